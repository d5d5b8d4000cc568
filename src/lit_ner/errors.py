"""The one exception type for a user's mistake or an unreachable resource.

The CLI prints a `LitNerError` as a single `lit_ner: error: ...` line and exits with status 2;
anything else is a bug in lit_ner and keeps its traceback.
"""


class LitNerError(Exception):
    """A problem the user can fix: bad input, a missing file, an unreachable Hub."""
