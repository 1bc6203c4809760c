"""Work ahead of the caller: the next item of an iterator, or the next calls of a function,
made in background threads while the caller handles the current one.

A range's steps wait on other processes most of the time: a fetch on the connector API, a day's
COPY on PostgreSQL, both of which release the GIL. ``ahead`` lets the next block be fetched, or
the next day be loaded, while this thread handles the current one, so the two cores work at once
(measured: ``benchmarks/bench_dagster_year.py``, README "Measured performance"). One item at a
time, in order, never more than one ahead: memory grows by one item, and the order of the side
effects (days loaded) is the iterator's own. ``at_once`` goes further for calls that are
independent of each other, such as days each loaded in their own transaction: PostgreSQL works on
two of them at once, on two cores.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
_DONE = object()


def ahead(items: Iterable[T], *, between: Callable[[], None] | None = None) -> Iterator[T]:
    """The items of ``items`` in order, the next one made while the caller handles this one.

    An exception raised making an item is raised here at that item, and nothing after it is
    made. Closing this iterator early (the caller's loop breaks or fails) waits for the item in
    the making, then closes ``items``: no thread outlives the loop. ``between`` runs in the
    making thread before each item after the first: pyarrow's allocator keeps the memory of an
    item made there and freed by the caller for that thread, until that thread collects it
    (measured: a 30-day run on S3 peaked 12-18 MB above a 2-day one without it, 4 MB with it).
    """
    source = iter(items)

    def following():
        if between is not None:
            between()
        return next(source, _DONE)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ahead")
    try:
        pending = pool.submit(next, source, _DONE)
        while (item := pending.result()) is not _DONE:
            pending = pool.submit(following)
            yield item
    finally:
        _finish(pool, source)


def at_once(
    function: Callable[[T], R],
    items: Iterable[T],
    *,
    calls: int = 2,
    between: Callable[[], None] | None = None,
) -> Iterator[R]:
    """``function(item)`` for each of ``items`` in background threads, the results in order:
    ``calls`` of them run at once while the caller waits for the oldest, ``calls - 1`` while it
    handles a result (so no more than ``calls`` items are out at any time).

    ``items`` are drawn in the caller's thread. An exception raised drawing an item or by a call
    is raised here at its place in the order (the calls before it come first); no call starts
    after it, but those already running finish: a later day may be loaded although an earlier
    one failed (each day is its own transaction, and running the range again replaces both).
    Leaving early likewise waits for the running calls and starts no other. ``between`` runs in
    the background thread before each call, as in ``ahead``.
    """
    source = iter(items)

    def call(item: T) -> R:
        if between is not None:
            between()
        return function(item)

    pending: deque[Future[R]] = deque()
    pool = ThreadPoolExecutor(max_workers=calls, thread_name_prefix="at_once")
    try:
        while True:
            try:
                item = next(source)
            except StopIteration:
                break
            except Exception:
                while pending:  # the items drawn before the failure are handled first
                    yield pending.popleft().result()
                raise
            pending.append(pool.submit(call, item))
            if len(pending) >= calls:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        _finish(pool, source)


def _finish(pool: ThreadPoolExecutor, source: Iterator[object]) -> None:
    """Wait for the work in the making, then close the source: no thread outlives the loop."""
    pool.shutdown(wait=True)
    close = getattr(source, "close", None)
    if close is not None:
        close()
