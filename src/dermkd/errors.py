"""User-facing errors.

A `DermkdError` is a problem with the user's input (paths, data, config values). The CLI
prints its message on one line and exits non-zero; anything else is a bug and keeps its
traceback.
"""


class DermkdError(Exception):
    """Bad input that the user can fix; the message must say what and where."""
