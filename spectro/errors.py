"""The one exception type for user errors.

Anything a user can cause (a wrong argument, an unusable source, a corrupt
run) raises :class:`SpectroError` with the offending value in the message.
The CLI catches it once and prints one line; ``assert`` never guards input.
"""

__all__ = ["SpectroError"]


class SpectroError(Exception):
    """A user-facing error: the message is shown as one line, no traceback."""
