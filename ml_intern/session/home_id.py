"""Which ML_INTERN_HOME recorded an undo turn or call: a random id made once per home (ML_INTERN_HOME/id).

A host name does not say it: two homes on one machine, or two machines of the same name, share one. Undo
puts back only what this home recorded: the before-copies are files in its blob store."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

ID_FILE = "id"


def home_id(home: Path) -> str:
    """The id of `home`, made (0600) the first time; several processes starting at once agree on one."""
    path = home / ID_FILE
    with contextlib.suppress(FileNotFoundError):
        if existing := path.read_text().strip():
            return existing
    home.mkdir(parents=True, exist_ok=True)
    made = secrets.token_hex(16)
    partial = home / f".{ID_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, made.encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(partial, path)  # never replaces one another process made meanwhile
    except FileExistsError:
        made = path.read_text().strip()
    finally:
        os.unlink(partial)
    return made
