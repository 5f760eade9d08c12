"""Call a function at a steady pace while a block runs (progress lines, status samples)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def every(seconds: float, call: Callable[[], None]) -> Iterator[None]:
    """Call ``call()`` on a thread every ``seconds`` while the block runs; stopped, and joined, when it ends."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(seconds):
            call()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
