"""`ml-intern sandboxes`: list the user's sandbox Spaces, delete leftovers. STUB: helper B owns it."""

from __future__ import annotations


def main(names: list[str], delete: bool, everywhere: bool, verbose: bool) -> int:
    """The command's exit code (0; 2 on a usage error; 1 when a deletion failed)."""
    raise NotImplementedError
