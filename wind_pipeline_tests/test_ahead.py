"""``ahead``: the next item made in a background thread while the caller handles this one."""

import threading

import pytest

from wind_pipeline.etl.ahead import ahead


def test_items_come_in_order_and_the_next_is_made_while_this_one_is_handled():
    handled = threading.Event()
    made_meanwhile = []

    def items():
        yield 1
        made_meanwhile.append(handled.wait(timeout=10))  # the caller is still on item 1
        yield 2
        yield 3

    seen = []
    for item in ahead(items()):
        seen.append(item)
        if item == 1:
            handled.set()
    assert seen == [1, 2, 3]
    assert made_meanwhile == [True]


def test_a_failing_item_is_raised_at_its_place_and_nothing_after_it_is_made():
    made = []

    def items():
        made.append(1)
        yield 1
        raise ValueError("day 2 failed")
        made.append(3)  # never reached: the worker stops at the failure

    seen = []
    with pytest.raises(ValueError, match="day 2 failed"):
        for item in ahead(items()):
            seen.append(item)
    assert seen == [1] and made == [1]


def test_leaving_early_waits_for_the_item_in_the_making_and_closes_the_source():
    state = {"made": 0, "closed": False}

    def items():
        try:
            for n in range(10):
                state["made"] += 1
                yield n
        finally:
            state["closed"] = True

    iterator = ahead(items())
    assert next(iterator) == 0
    iterator.close()
    assert state == {"made": 2, "closed": True}  # item 1 made ahead, nothing more
    assert not [t for t in threading.enumerate() if t.name.startswith("ahead")]


def test_between_runs_in_the_making_thread_before_each_item_after_the_first():
    calls = []

    def items():
        for n in range(3):
            calls.append(("make", n, threading.current_thread().name))
            yield n

    def between():
        calls.append(("between", threading.current_thread().name))

    assert list(ahead(items(), between=between)) == [0, 1, 2]
    kinds = [call[0] for call in calls]
    assert kinds == ["make", "between", "make", "between", "make", "between"]
    assert {call[-1] for call in calls} == {calls[0][-1]} != {threading.current_thread().name}
