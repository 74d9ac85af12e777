"""The one way library code talks to the user: lines on stderr, each starting ``spectro:``.

Progress lines go through a :func:`printer` that ``progress=False`` (the
CLI's ``--quiet``) silences; a :func:`note` (a setting ignored, a batch size
lowered, a run restarted) changes what the user gets, so it is always shown.
Results themselves (tables, predictions) are the caller's, on stdout.
"""

from __future__ import annotations

import sys
from typing import Callable

__all__ = ["say", "note", "printer"]


def say(msg: str, *, prefix: str = "", fresh_line: bool = False) -> None:
    """Print ``spectro: PREFIXmsg`` on stderr at once; ``fresh_line`` first ends a progress bar's line."""
    print(f"{chr(10) if fresh_line else ''}spectro: {prefix}{msg}", file=sys.stderr, flush=True)


def note(msg: str, *, prefix: str = "") -> None:
    """A line that is always shown: ``spectro: PREFIXnote: msg``."""
    say(f"note: {msg}", prefix=prefix)


def printer(enabled: bool, prefix: str = "") -> Callable[[str], None]:
    """A ``say`` for progress lines: prints with ``prefix`` (e.g. ``"compare: "``) when ``enabled``."""

    def out(msg: str) -> None:
        if enabled:
            say(msg, prefix=prefix)

    return out
