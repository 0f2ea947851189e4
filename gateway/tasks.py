"""Stopping a background task for certain.

Python 3.11's ``asyncio.wait_for`` returns the result of a future that completed in the same loop turn as a
cancellation and drops the cancellation (gh-86296, fixed in 3.12). A task cancelled at that moment goes on; one that
then waits for something that never comes (a connection to end) made ``task.cancel(); await task`` wait for ever:
a backend stopped while its MQTT listener was connecting never stopped (CI). ``await task`` under
``suppress(CancelledError)`` also swallowed the caller's own cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

CANCEL_AGAIN_S: Final = 1.0
"""A task still running this long after its cancellation is cancelled again."""


async def cancel_and_wait(task: asyncio.Future[Any], *, again_s: float = CANCEL_AGAIN_S) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling it again while it goes on.

    An exception the task ended with (other than its cancellation) is raised; a cancellation of the caller is not
    swallowed.
    """
    task.cancel()
    while not (await asyncio.wait({task}, timeout=again_s))[0]:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        task.result()  # done: never waits
