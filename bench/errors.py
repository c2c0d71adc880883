"""The one exception type that means "the user asked for something we cannot do".

The CLI turns it into a one-line message and exit code 2, never a traceback.
"""

from __future__ import annotations

from pathlib import Path


class UsageError(Exception):
    """Bad input: unknown kernel, malformed shape, missing device, unwritable folder, ..."""


def check_writable(folder: Path, flag: str) -> None:
    """Fail before measuring anything if results cannot be written under `folder`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".flopwatt-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"{flag} {folder}: not writable ({exc.strerror}); choose another folder"
        ) from None
