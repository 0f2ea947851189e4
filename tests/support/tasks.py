"""A bound on an async test's whole body that says which await hung, not only that the event loop was polling."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


def _await_chain(coro: object) -> list[str]:
    """Where a coroutine is suspended, outermost first, following what each frame awaits.

    (``Task.print_stack`` shows only the outermost frame of a suspended coroutine.)
    """
    where: list[str] = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) or getattr(coro, "ag_frame", None)
        if frame is not None:
            where.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None) or getattr(coro, "ag_await", None)
    return where


def task_stacks() -> str:
    """Every pending task of the running loop with the awaits it is suspended in."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        print(f"--- {task.get_name()}", file=out)
        print("\n".join(_await_chain(task.get_coro())), file=out)
    return out.getvalue()


@asynccontextmanager
async def watchdog(seconds: float) -> AsyncIterator[None]:
    """Fail with every task's stack when the body is still running after ``seconds``.

    pytest-timeout kills a hung asyncio test with the main thread's stack, which is always the event loop's
    ``select``: it names no await. This dumps the tasks first, then cancels the body.
    """
    stacks: list[str] = []

    def dump() -> None:
        stacks.append(task_stacks())
        # Printed at once too: if a hung await swallows the cancellation, pytest's timeout still shows it.
        print(f"watchdog: still running after {seconds:g} s; the tasks:\n{stacks[0]}", file=sys.stderr)

    handle = asyncio.get_running_loop().call_later(seconds, dump)
    try:
        async with asyncio.timeout(seconds + 0.5):
            yield
    except TimeoutError:
        if stacks:
            raise AssertionError(f"still running after {seconds:g} s; the tasks:\n{stacks[0]}") from None
        raise
    finally:
        handle.cancel()
