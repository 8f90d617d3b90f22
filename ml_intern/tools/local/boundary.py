"""Where the file tools may act (DESIGN.md "The boundary"): `write`/`edit` inside the working directory and
the config's `roots`, `read` anywhere but credential and hidden paths; anything else needs approval. The
places are confined bash's (tools/local/places.py): what bash may not see, `read` asks about; what bash may
not change even inside the roots (git hooks and config, shell start-up files), `write`/`edit` ask about.

Paths are judged by where they finally lead: `~`, `..`, absolute paths and every symlink on the way (a link
in the parent chain, or a dangling link as the last part) are resolved first. The tools resolve the same way
when they run and write to that final path. `execute_tools` asks the registry again just before running a
call that has no decision, so a call that needed none when approval_interrupt looked but leaves the boundary
now (a link swapped in between) is rejected, not run. Left open: a swap in the instant between that check
and the write (closing it would take openat with O_NOFOLLOW on every path part), and an approved call runs
on its path as resolved when it runs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ml_intern.secrets import is_credential_path
from ml_intern.tools.base import ToolEnv
from ml_intern.tools.local.places import PROTECTED_IN_HOME, PROTECTED_IN_ROOTS, hidden_paths

DOTENV = re.compile(r"\.env(rc|\..*)?$")  # .env, .env.local, .envrc (direnv runs it)


def resolve(env: ToolEnv, path: str) -> Path:
    """`path` (relative to the working directory, `~` expanded) with every symlink followed."""
    return Path(os.path.realpath(env.workdir / Path(path).expanduser()))


def writable_roots(env: ToolEnv) -> list[Path]:
    """The working directory and the config's `roots` (relative ones against the working directory)."""
    roots = [env.workdir, *(env.workdir / Path(root).expanduser() for root in env.config.roots)]
    return [Path(os.path.realpath(root)) for root in roots]


def user_home() -> Path:
    """The user's home directory, resolved ($HOME)."""
    return Path(os.path.realpath(os.path.expanduser("~")))


def hidden(env: ToolEnv) -> list[Path]:
    """What confined bash cannot see (credential places, ML_INTERN_HOME, `bash.hidden_paths`), resolved
    (once per run: every `read` asks)."""
    if "hidden" not in env.boundary_places:
        places = hidden_paths(env.config, user_home(), env.home, env.workdir, os.environ)
        env.boundary_places["hidden"] = [Path(os.path.realpath(place)) for place in places]
    return env.boundary_places["hidden"]


def protected(env: ToolEnv) -> list[Path]:
    """Files programs outside the sandbox run or obey (git hooks and config, shell start-up files), resolved
    (once per run: every `write` and `edit` asks)."""
    if "protected" not in env.boundary_places:
        places = [root / name for root in writable_roots(env) for name in PROTECTED_IN_ROOTS]
        places += [user_home() / name for name in PROTECTED_IN_HOME]
        env.boundary_places["protected"] = [Path(os.path.realpath(place)) for place in places]
    return env.boundary_places["protected"]


def run_outside(env: ToolEnv, target: Path) -> bool:
    """Whether `target` is a file programs outside the sandbox run or obey: the protected places, a `.env*`
    directly in the working directory or a root (it configures the next run), a `.git` entry or below it."""
    if within(target, protected(env)):
        return True
    for root in writable_roots(env):
        if target.is_relative_to(root) and target != root:
            parts = target.relative_to(root).parts
            if ".git" in parts or (len(parts) == 1 and DOTENV.match(parts[0])):
                return True
    return False


def within(target: Path, roots: list[Path]) -> bool:
    """Whether `target` is one of `roots` or below one."""
    return any(target == root or target.is_relative_to(root) for root in roots)


def escape_reason(env: ToolEnv, path: str) -> str | None:
    """Why changing `path` leaves the working directory and roots (or touches a file that programs outside
    the sandbox run), or None when it stays inside."""
    target = resolve(env, path)
    if run_outside(env, target):
        return f"{path} leads to {target}, which programs outside the sandbox run or obey"
    if within(target, writable_roots(env)):
        return None
    where = "the working directory" + (" and the configured roots" if env.config.roots else "")
    via = "" if str(target) == os.path.abspath(env.workdir / Path(path).expanduser()) else " (through a link)"
    return f"{path} leads to {target}{via}, outside {where}"


def secret_reason(env: ToolEnv, path: str) -> str | None:
    """Why reading `path` would send a credential or ml-intern's own state to the model provider, or None."""
    target = resolve(env, path)
    if within(target, [Path(os.path.realpath(env.home / "outputs"))]):
        return None  # spilled tool output: read back on purpose
    if is_credential_path(target.as_posix()) or is_credential_path(path):
        return f"reads {target}, a credential file: its content would go to the model provider"
    if within(target, hidden(env)):
        return f"reads {target}, which bash may not see (credentials, ml-intern's state, bash.hidden_paths)"
    return None


def write_needs_approval(args: dict[str, Any], env: ToolEnv) -> str | None:
    """`write`/`edit` outside the working directory and roots (a link leaving them counts)."""
    reason = escape_reason(env, str(args.get("path", "")))
    return f"writes outside the boundary: {reason} (config `roots` widens it)" if reason else None


def read_needs_approval(args: dict[str, Any], env: ToolEnv) -> str | None:
    """`read` of a credential file or a hidden path (anything else may be read)."""
    return secret_reason(env, str(args.get("path", "")))


def always(args: dict[str, Any]) -> bool:
    """Every call these rules stop is asked: no blanket approval (--approval auto, /yolo) may pass it."""
    return True
