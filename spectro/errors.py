"""spectro's exceptions, all in one place, and how an error becomes one line.

Anything a user can cause (a wrong argument, an unusable source, a corrupt
run) raises :class:`SpectroError` with the offending value in the message.
The CLI catches it once and prints one line; ``assert`` never guards input.
The others are signals between spectro's own layers: one bad input file
(skipped and reported, never raised to the user), a damaged store (a
SpectroError the store rebuilds from), a loss that stopped being finite,
and a training run stopped by Ctrl-C after its checkpoint.
"""

import errno
import signal

__all__ = ["SpectroError", "BadInput", "StoreDamaged", "Diverged", "TrainingInterrupted", "first_line",
           "WRITE_ERRNOS", "cannot_write"]

#: Why a place cannot be written, for the errors a user fixes (space, permissions), not spectro's bugs.
WRITE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the file system",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


class SpectroError(Exception):
    """A user-facing error: the message is shown as one line, no traceback."""


class BadInput(Exception):
    """One input file or signal cannot be used; ``str(err)`` is the reason (errors.csv, predict's error)."""


class StoreDamaged(SpectroError):
    """A store that is not whole: a file missing, truncated or inconsistent with another.

    ``what`` is the problem alone (the message adds the store and how to rebuild it).
    """

    def __init__(self, message: str, *, what: str = "") -> None:
        super().__init__(message)
        self.what = what


class Diverged(Exception):
    """The training loss became NaN or infinite."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) stopped training after a resumable checkpoint was saved.

    ``signum`` is the signal that stopped it (SIGINT unless told), for the exit status
    (:func:`spectro.utils.signals.exit_status`).
    """

    def __init__(self, *args: object, signum: int = signal.SIGINT) -> None:
        super().__init__(*args)
        self.signum = int(signum)


def first_line(err: BaseException) -> str:
    """The first non-empty line of ``err``'s message, or its type name when it has none.

    Library exceptions (libsndfile, torch.load, state_dict mismatches) carry
    multi-line messages; a one-line report keeps only the line that names
    the cause.
    """
    for line in str(err).splitlines():
        if line.strip():
            return line.strip()
    return type(err).__name__


def cannot_write(err: OSError, advice: str) -> SpectroError | None:
    """The one line for a write that failed for want of space or permission; None for any other OSError.

    ``advice`` says what to do ("free some space or choose another --out").
    """
    reason = WRITE_ERRNOS.get(err.errno)
    if reason is None:
        return None
    where = f" {err.filename}" if err.filename else ""
    return SpectroError(f"cannot write{where}: {reason}; {advice}")
