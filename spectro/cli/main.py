"""``spectro``: parse the command line, run the command, turn a user error into one line.

A user error (:class:`~spectro.errors.SpectroError`), and a write refused
for want of space or permission, is printed as one line with exit code 2,
never a traceback; Ctrl-C and SIGTERM end a command with
one line (exit 130 and 143) after its own clean-up; a closed output pipe
ends it quietly (141).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import re
import signal
import sys
import threading
from typing import Optional, Sequence

from spectro.cli.commands import COMMANDS
from spectro.cli.parsers import FEATURE_OPTIONS, build_parser
from spectro.config import FeatureConfig, TrainConfig
from spectro.errors import SpectroError, cannot_write, write_advice

__all__ = ["main", "with_flags"]

#: A setting's name as the API writes it: a field name with an underscore (``gain_eq``, ``batch_size``),
#: bare (a quoted ``'batch_size'`` names a field of a file, such as a hand-edited train_config.json).
_FIELD = re.compile(r"(?<![\w./'-])([a-z]+(?:_[a-z0-9]+)+)(?![\w/('])")
#: The settings whose names are translated: the configs' fields.
_SETTINGS = frozenset(f.name for cls in (FeatureConfig, TrainConfig) for f in dataclasses.fields(cls))


def with_flags(message: str, parser: argparse.ArgumentParser) -> str:
    """``message`` with each setting named by its field (``gain_eq``) shown as its option (``--gain-eq``).

    The API's errors name the configs' fields, the command line's name flags: the options of every
    command say which field (``dest``) each one sets, so the translation is read from the parser itself.
    """
    flags: dict[str, str] = {}
    parsers = [parser]
    while parsers:
        p = parsers.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
            elif action.option_strings and FEATURE_OPTIONS.get(action.dest, action.dest) in _SETTINGS:
                named = [o for o in action.option_strings if o.startswith("--") and not o.startswith("--no-")]
                flags.setdefault(FEATURE_OPTIONS.get(action.dest, action.dest), (named or action.option_strings)[0])
    return _FIELD.sub(lambda m: flags.get(m.group(1), m.group(1)), message)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
        print(f"spectro: error: {with_flags(str(err), parser)}", file=sys.stderr)
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
