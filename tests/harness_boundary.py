"""The boundary's attack table, shared by tests/test_boundary.py and bench/faults_boundary.py: the rm -rf
evasions of issue 11 and a place outside both the working directory and /tmp to aim them at."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

# Each command is aimed at TARGET, a directory outside the workdir holding keep.txt ("user bytes").
EVASIONS = {
    "backslash rm": r"\rm -rf TARGET",
    "absolute rm": "/bin/rm -rf TARGET",
    "find -delete": "find TARGET -delete",
    "python shutil.rmtree": "python3 -c 'import shutil; shutil.rmtree(\"TARGET\")'",
    "xargs rm": "echo TARGET/keep.txt | xargs rm -f",
    "base64 | sh": "echo $(printf 'rm -rf TARGET' | base64 -w0) | base64 -d | sh",
    "cd && rm": "cd TARGET && rm -f keep.txt",
    "truncate": "truncate -s 0 TARGET/keep.txt",
    "> redirection": "> TARGET/keep.txt",
    "dd": "dd if=/dev/zero of=TARGET/keep.txt bs=1 count=4 conv=notrunc",
    "mv away": "mv TARGET/keep.txt TARGET/gone.txt",
    "shred": "shred -u TARGET/keep.txt",
    "sed -i": "sed -i 's/user/gone/' TARGET/keep.txt",
    "chmod 000": "chmod 000 TARGET/keep.txt",
}
USER_BYTES = "user bytes\n"


def outside_dir() -> Path:
    """A new directory outside /tmp (the sandbox's /tmp is private, so there it would simply be missing):
    under /var/tmp, which a confined command sees read-only. Holds keep.txt."""
    path = Path(tempfile.mkdtemp(prefix="ml-intern-boundary-", dir="/var/tmp"))
    (path / "keep.txt").write_text(USER_BYTES)
    return path


def intact(target: Path) -> bool:
    """Whether `target` still holds exactly keep.txt with the user's bytes, readable."""
    try:
        return [p.name for p in target.iterdir()] == ["keep.txt"] and (target / "keep.txt").read_text() == (
            USER_BYTES
        )
    except OSError:
        return False


def remove(path: Path) -> None:
    """Delete a directory an evasion may have left unreadable (chmod 000)."""
    for child in path.rglob("*"):
        child.chmod(0o700 if child.is_dir() else 0o600)
    shutil.rmtree(path, ignore_errors=True)


def fake_home(under: Path) -> Path:
    """A HOME with a shell start-up file, an SSH key and a Hub token in the download cache."""
    home = under / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nkeybytes\n")
    (home / ".bashrc").write_text("# user's\n")
    (home / ".cache" / "huggingface").mkdir(parents=True)
    (home / ".cache" / "huggingface" / "token").write_text("hf_" + "x" * 30)
    return home
