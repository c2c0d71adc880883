"""The one exception type that means "the user asked for something we cannot do".

The CLI turns it into a one-line message and exit code 2, never a traceback.
"""


class UsageError(Exception):
    """Bad input: unknown kernel, malformed shape, missing device, unwritable folder, ..."""
