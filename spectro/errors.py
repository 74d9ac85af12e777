"""The one exception type for user errors, and how an error becomes one line.

Anything a user can cause (a wrong argument, an unusable source, a corrupt
run) raises :class:`SpectroError` with the offending value in the message.
The CLI catches it once and prints one line; ``assert`` never guards input.
"""

__all__ = ["SpectroError", "first_line"]


class SpectroError(Exception):
    """A user-facing error: the message is shown as one line, no traceback."""


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
