"""The event-stream writer: subscribe a store to an :class:`~longthink.events.EventBus` without slowing the run.

The listener only appends the event to a buffer (a deque append, well under a microsecond); a background
thread takes the buffer in batches and writes each batch with :meth:`Store.apply` in one transaction — when
``batch_size`` events are waiting, every ``interval_s`` seconds otherwise, and on :meth:`flush` and
:meth:`close`. Because ``apply`` is idempotent, a batch that fails is retried as a whole; when it keeps
failing, its events are written one by one and those that still fail are kept in :attr:`unwritten` (and
logged) so that they can be replayed later with ``store.apply(observer.unwritten)``. A batch that fails because
the database is unreachable (:func:`~longthink.retry.transient`: the store has already retried it for its
own window) is not split: it stays in :attr:`unwritten` with every later event behind it, in order (a row is the
projection of its events in order), and the next write — at the latest on :meth:`flush` or :meth:`close` — tries
them all again first. A failing store never raises into the run.

    store = open_store()
    with StoreObserver(store, bus):
        result = await strategy.solve(problem, SearchContext(llm, events=bus))
    # closed: every event is in the store
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType

from longthink.events import Event, EventBase, EventBus
from longthink.retry import transient
from longthink.store.protocol import Store

log = logging.getLogger(__name__)


class StoreObserver:
    """Writes events to ``store`` in batches on a background thread; attach it to ``bus`` (or several)."""

    def __init__(
        self,
        store: Store,
        bus: EventBus | None = None,
        *,
        batch_size: int = 2048,
        interval_s: float = 0.2,
        retries: int = 3,
        retry_delay_s: float = 0.05,
    ) -> None:
        if batch_size < 1 or interval_s <= 0 or retries < 0:
            raise ValueError("StoreObserver needs batch_size >= 1, interval_s > 0 and retries >= 0")
        self.store = store
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self.written = 0  # events new to the store
        self.batches = 0
        self.busy_s = 0.0  # CPU time the writer thread spent writing (time.thread_time)
        self.unwritten: list[Event] = []
        self._stalled = False  # unwritten holds events kept back by a lost connection: they are written first
        self._buffer: deque[Event | threading.Event] = deque()
        self._wake = threading.Event()
        self._closing = False
        self._unsubscribe: list[Callable[[], None]] = []
        self._thread = threading.Thread(target=self._loop, name="longthink-store-writer", daemon=True)
        self._thread.start()
        if bus is not None:
            self.attach(bus)

    # -- the hot path ---------------------------------------------------------------------------------------
    def __call__(self, event: Event) -> None:
        buffer = self._buffer
        buffer.append(event)
        if len(buffer) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    def attach(self, bus: EventBus) -> StoreObserver:
        """Record every later event of ``bus``."""
        self._unsubscribe.append(bus.subscribe(self))
        return self

    # -- control --------------------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Events received and not written yet."""
        return sum(1 for item in list(self._buffer) if isinstance(item, EventBase))

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every event received so far is written (or given up on); False on timeout."""
        if not self._thread.is_alive():
            self._drain()
            return True
        marker = threading.Event()
        self._buffer.append(marker)
        self._wake.set()
        return marker.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Detach from the buses, write what is buffered and stop the thread. Idempotent."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self._closing = True
        self._wake.set()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._drain()  # anything appended while the thread was stopping

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> StoreObserver:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> StoreObserver:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- the writer thread ----------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            closing = self._closing
            self._drain()
            if closing:
                if self._stalled:
                    self._write([])  # a last try for the events a lost connection kept back
                return

    def _drain(self) -> None:
        """Write everything in the buffer, ``batch_size`` events per transaction; release flush markers."""
        buffer = self._buffer
        while buffer:
            batch: list[Event] = []
            markers: list[threading.Event] = []
            while buffer and len(batch) < self.batch_size:
                item = buffer.popleft()
                if isinstance(item, EventBase):
                    batch.append(item)
                else:
                    markers.append(item)
                    break
            if batch or (markers and self._stalled):
                started = time.thread_time()
                self._write(batch)
                self.busy_s += time.thread_time() - started
            for marker in markers:
                marker.set()

    def _write(self, batch: list[Event]) -> None:
        if self._stalled:  # the events kept back by a lost connection go first, then these, in order
            batch, self.unwritten, self._stalled = [*self.unwritten, *batch], [], False
        for attempt in range(self.retries + 1):
            try:
                self.written += self.store.apply(batch)
                self.batches += 1
                return
            except Exception as exc:
                if transient(exc):
                    log.warning("writing %d events failed: the database is unreachable; they wait for the next "
                                "write", len(batch), exc_info=True)  # fmt: skip
                    self.unwritten.extend(batch)
                    self._stalled = True
                    return
                log.warning("writing %d events failed (attempt %d)", len(batch), attempt + 1, exc_info=True)
                if attempt < self.retries:
                    time.sleep(self.retry_delay_s * 4**attempt)
        for event in batch:  # the batch keeps failing: save what can be saved
            try:
                self.written += self.store.apply([event])
            except Exception:
                log.exception("event %s #%d of run %s not written", event.kind, event.seq, event.run_id)
                self.unwritten.append(event)
