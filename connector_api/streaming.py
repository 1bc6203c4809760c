"""A streamed response that gives its database connection back whatever its client does.

A stream is one COPY statement (one snapshot) on a connection of its own, running for as long
as the body is being sent. Three ways out, all ending in one clean-up that closes the encoder,
stops the COPY and closes the connection:

- the client reads to the end;
- the client goes away: Starlette cancels the body's task on ``http.disconnect``;
- the client stops reading: a send that makes no progress for ``stall_timeout`` seconds (the
  socket buffers are full) abandons the response, and uvicorn closes the connection, so the
  client sees a truncated transfer, never a short body that looks complete.

Streams get their own connections, not the pool's, and at most ``max_streams`` at once, so
stalled downloads never take the connections that small reads and ``/health`` need.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import anyio
from fastapi.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

log = logging.getLogger(__name__)

SLICE_BYTES = 256 * 1024


class StreamSlots:
    """At most ``limit`` concurrent streams; a new one waits up to ``wait`` seconds for a slot."""

    def __init__(self, limit: int, wait: float) -> None:
        self.limit, self.wait = limit, wait
        self._semaphore = anyio.Semaphore(limit)

    async def acquire(self) -> bool:
        with anyio.move_on_after(self.wait):
            await self._semaphore.acquire()
            return True
        return False

    def release(self) -> None:
        self._semaphore.release()


class GuardedStream(StreamingResponse):
    """Streams ``pieces`` (a blocking iterator, run in the threadpool), then calls ``close``.

    ``close`` runs exactly once, in a worker thread, shielded from cancellation, when the
    response ends for any reason; then the stream's slot is released.
    """

    def __init__(
        self,
        pieces: Iterator[bytes],
        *,
        media_type: str,
        stall_timeout: float,
        close: Callable[[], None],
        slots: StreamSlots,
    ) -> None:
        self._pieces = pieces
        self._close = close
        self._slots = slots
        self.stall_timeout = stall_timeout
        super().__init__(self._pump(), media_type=media_type)

    async def _pump(self):
        while (piece := await run_in_threadpool(next, self._pieces, None)) is not None:
            # Sent in slices, so one send waits for at most a slice to drain: a slow client
            # still makes progress within the stall timeout, a stalled one does not.
            view = memoryview(piece)
            for offset in range(0, len(view), SLICE_BYTES):
                yield view[offset : offset + SLICE_BYTES]

    async def stream_response(self, send: Send) -> None:
        async def send_or_give_up(message: Message) -> None:
            with anyio.fail_after(self.stall_timeout):
                await send(message)

        try:
            await super().stream_response(send_or_give_up)
        except TimeoutError:
            log.warning(
                "a client read nothing for %.0f s: its stream is abandoned and its database "
                "connection closed",
                self.stall_timeout,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await self.body_iterator.aclose()
                    await run_in_threadpool(self._close)
                except Exception:
                    log.exception("closing a stream failed; the session timeout will end it")
                finally:
                    self._slots.release()
