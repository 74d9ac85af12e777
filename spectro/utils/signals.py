"""SIGINT and SIGTERM caught for the length of a ``with`` block, the old handlers back after it."""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["StopSignals", "exit_status"]


class StopSignals:
    """Base of a context that handles SIGINT and SIGTERM with ``self._handle(signum, frame)``.

    Handlers can be set only in the main thread; elsewhere nothing is
    installed. The previous handlers are restored on exit.
    """

    def __init__(self) -> None:
        self._old: dict = {}

    def _handle(self, signum: int, frame: Any) -> None:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def __enter__(self) -> Any:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()


def exit_status(signum: int) -> int:
    """The exit status of a command that a signal stopped: 128 + its number, as a shell shows it
    (130 for Ctrl-C's SIGINT, 143 for SIGTERM)."""
    return 128 + int(signum)
