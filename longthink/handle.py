"""A run handle: what :meth:`Agent.astream` and :meth:`Agent.stream` return — the run's events as they happen and
its result, owned by the caller (nothing is shared on the agent, so concurrent runs never see each other's).

    handle = agent.astream("How many ...?")
    async for event in handle:          # typed events (longthink.events), in order
        ...
    result = await handle.result()      # the RunResult (runs the rest to completion if not iterated)

    with agent.stream("How many ...?") as handle:   # the same, for synchronous code
        for event in handle:
            ...
        result = handle.result()
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from longthink.events import Event, EventBus
from longthink.llm.base import run_sync

if TYPE_CHECKING:
    from longthink.api import RunResult

Runner = Callable[[EventBus], Coroutine[Any, Any, "RunResult"]]


class RunHandle:
    """One run started by the agent (lazily: it starts on the first iteration or :meth:`result`).

    ``run_id`` is known at once. Iterating yields every event of the run; the iteration ends when the run does
    (its error, if any, is raised from :meth:`result`). ``on_close`` runs once when the run has ended (the
    agent flushes the store there)."""

    def __init__(self, run_id: str, bus: EventBus, runner: Runner, on_close: Callable[[], None] = lambda: None):
        self.run_id = run_id
        self.bus = bus
        self._runner = runner
        self._on_close = on_close
        self._queue = bus.queue()  # subscribed now: no event of the run is missed
        self._task: asyncio.Task[RunResult] | None = None
        self._closing: asyncio.Future[None] | None = None

    def _start(self) -> asyncio.Task[RunResult]:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._runner(self.bus))
            self._task.add_done_callback(lambda _: self.bus.close())
        return self._task

    async def _close(self) -> None:
        """Run ``on_close`` once (in a thread: the store's flush waits on its writer, not on the event loop);
        every caller returns only once it has finished."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(asyncio.to_thread(self._on_close))
        await asyncio.shield(self._closing)

    async def _events(self) -> AsyncIterator[Event]:
        task = self._start()
        try:
            while (event := await self._queue.get()) is not None:
                yield event
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            if task.done():
                await self._close()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def result(self) -> RunResult:
        """The run's result, once it has ended (starting it if nothing has yet)."""
        task = self._start()
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                await self._close()

    async def cancel(self) -> None:
        """Stop the run (it stays resumable from its last checkpoint)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._close()


class SyncRunHandle:
    """:class:`RunHandle` for synchronous code: the run goes on the sync entry points' private event loop, driven
    from a thread; events come through a queue. Use it as a context manager (or call :meth:`result`) so the
    thread is always joined."""

    def __init__(self, handle: RunHandle):
        self.run_id = handle.run_id
        self._handle = handle
        self._events: queue.Queue[Any] = queue.Queue()
        self._done = object()
        self._outcome: tuple[RunResult | None, BaseException | None] = (None, None)
        self._thread = threading.Thread(target=self._run, name=f"longthink-run-{self.run_id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        async def main() -> None:
            try:
                async for event in self._handle:
                    self._events.put(event)
                self._outcome = (await self._handle.result(), None)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
                self._outcome = (None, exc)
            finally:
                self._events.put(self._done)

        run_sync(main())  # the loop every sync entry point uses (backends' clients are bound to it)

    def __iter__(self) -> Iterator[Event]:
        while (item := self._events.get()) is not self._done:
            yield item
        self._events.put(self._done)  # a second iteration ends at once

    def result(self) -> RunResult:
        self._thread.join()
        result, error = self._outcome
        if error is not None:
            raise error
        if result is None:  # the thread ended without either (it cannot, short of an interpreter shutdown)
            raise RuntimeError(f"run {self.run_id} ended without a result")
        return result

    def __enter__(self) -> SyncRunHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._thread.join()


__all__ = ["RunHandle", "SyncRunHandle"]
