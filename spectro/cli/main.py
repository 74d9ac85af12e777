"""``spectro``: parse the command line, run the command, turn a user error into one line.

A user error (:class:`~spectro.errors.SpectroError`), and a write refused
for want of space or permission, is printed as one line with exit code 2,
never a traceback; Ctrl-C and SIGTERM end a command with
one line (exit 130 and 143) after its own clean-up; a closed output pipe
ends it quietly (141).
"""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
from typing import Optional, Sequence

from spectro.cli.commands import COMMANDS
from spectro.cli.parsers import build_parser
from spectro.errors import SpectroError, cannot_write, write_advice

__all__ = ["main"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        # A file name that is not UTF-8 is printed as its own bytes, as ls or find would, not as a traceback.
        sys.stdout.reconfigure(errors="surrogateescape")
    terminated: list[int] = []
    in_main_thread = threading.current_thread() is threading.main_thread()  # handlers can be set only there
    previous = signal.signal(signal.SIGTERM, _raise_interrupt(terminated)) if in_main_thread else None
    try:
        rc = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not in Python's exit
        return rc
    except SpectroError as err:
        print(f"spectro: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        what = "terminated" if terminated else "interrupted"
        print(f"spectro: {what}; nothing already written was changed", file=sys.stderr)
        return 143 if terminated else 130
    except BrokenPipeError:
        # The reader went away (`spectro info STORE | head`): stop quietly, as
        # other command-line tools do. What is still buffered for the closed
        # pipe goes to /dev/null, or Python would report it again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE: what a shell shows for a tool ended by the closed pipe
    except OSError as err:  # a read-only, full or forbidden place no command turned into its own line
        failure = cannot_write(err, write_advice(err))
        if failure is None:
            raise
        print(f"spectro: error: {failure}", file=sys.stderr)
        return 2
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _raise_interrupt(flag: list[int]):
    """A SIGTERM handler that unwinds like Ctrl-C (temporary files removed, workers stopped).

    ``flag`` gets the signal number, so the exit status can say which it was.
    """

    def handler(signum, frame):
        flag.append(signum)
        raise KeyboardInterrupt

    return handler
