"""The one exception type for a user's mistake or an unreachable resource.

The CLI prints a `LitNerError` as a single `lit_ner: error: ...` line and exits with status 2;
anything else is a bug in lit_ner and keeps its traceback.
"""

import sys
from typing import NoReturn

# The exit status of a fit stopped by a signal to be resumed (EX_TEMPFAIL: try again).
EXIT_RESUMABLE = 75


class LitNerError(Exception):
    """A problem the user can fix: bad input, a missing file, an unreachable Hub."""


def exit_with(error: LitNerError) -> NoReturn:
    """Ends the process as every lit_ner command does on a user's mistake: one line, status 2."""
    print(f"lit_ner: error: {error}", file=sys.stderr)
    sys.exit(2)
