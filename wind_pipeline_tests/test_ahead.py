"""``ahead``: the next item made in a background thread while the caller handles this one;
``at_once``: several independent calls at a time, their results in order."""

import threading
import time

import pytest

from wind_pipeline.etl.ahead import ahead, at_once


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

    before = set(threading.enumerate())  # another test's threads may still be ending
    iterator = ahead(items())
    assert next(iterator) == 0
    iterator.close()
    assert state == {"made": 2, "closed": True}  # item 1 made ahead, nothing more
    assert not set(threading.enumerate()) - before


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


# --- at_once: independent calls, several running while the caller handles a result -----------


def test_at_once_runs_calls_together_and_gives_results_in_order():
    both_running = threading.Barrier(2, timeout=10)  # broken unless two calls run at once

    def square(n):
        if n < 2:
            both_running.wait()
        return n * n

    assert list(at_once(square, range(5), calls=2)) == [0, 1, 4, 9, 16]


def test_at_once_raises_a_failure_at_its_place_and_starts_nothing_after_it():
    started = []

    def load(n):
        started.append(n)
        if n == 1:
            raise ValueError("day 1 failed")
        return n

    seen, before = [], set(threading.enumerate())
    with pytest.raises(ValueError, match="day 1 failed"):
        for result in at_once(load, range(10), calls=2):
            seen.append(result)
    assert seen == [0]
    assert max(started) <= 2  # no more than `calls` items out at a time
    assert not set(threading.enumerate()) - before


def test_at_once_hands_out_the_items_before_a_failing_draw_first():
    def items():
        yield from range(3)
        raise ValueError("no source data for day 3")

    seen = []
    with pytest.raises(ValueError, match="day 3"):
        for result in at_once(lambda n: n, items(), calls=2):
            seen.append(result)
    assert seen == [0, 1, 2]


def test_leaving_at_once_early_waits_for_running_calls_and_closes_the_source():
    state = {"closed": False}
    finished = []

    def items():
        try:
            yield from range(10)
        finally:
            state["closed"] = True

    def slow(n):
        time.sleep(0.05)
        finished.append(n)
        return n

    before = set(threading.enumerate())
    results = at_once(slow, items(), calls=2)
    assert next(results) == 0
    results.close()
    assert state["closed"]
    assert sorted(finished) == list(range(len(finished))) and len(finished) <= 2
    assert not set(threading.enumerate()) - before
