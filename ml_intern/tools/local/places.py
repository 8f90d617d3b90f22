"""Where a confined `bash` command may write and what it must not see.

Codex's `workspace-write` policy makes the working directory, extra roots, /tmp and $TMPDIR writable and
keeps `.git` read-only; Claude Code's sandbox runtime writes to the working directory and its own temp dir
and denies writes to shell start-up files, `.git/hooks` and `.git/config`. We follow both, with two ML
choices: the download caches (~/.cache, $HF_HOME: models, datasets, wheels) stay writable so training runs
work, with the Hub token files inside them hidden; and /tmp is a private directory of ours bound at /tmp, so
commands keep `/tmp/x` across calls but cannot reach the user's other temp files or the sockets there
(tmux, ssh-agent). ML_INTERN_HOME (checkpoints, snapshots, logs) is hidden, its `outputs/` shown read-only:
spilled command output is read back from there.

Read-only inside the writable places: `.git/hooks` and `.git/config`, with `.git` its own mount point (it
cannot be renamed and replaced by a `.git` file naming a copy with `core.fsmonitor`); the user's code caches
(pip, uv, pre-commit, torch hub and extensions, Hub remote-code modules: bash gets its own, shell.py); the
Hub cache's `.py`/`.so` blobs; files hard-linked from elsewhere (pinned.py). Known limits: in a working
directory without a repository a command can `git init` one with `core.fsmonitor` that the user's own git
then runs (bash reports a new `.git`, shell.py); it can swap a Hub snapshot's symlink or `refs/` to code it
downloads (offline loads follow them); and the pinned-file scans are bounded.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ml_intern.configs.schema import AgentConfig
from ml_intern.tools.local.pinned import hard_linked, hub_code_blobs

HIDDEN_IN_HOME = (
    *(".ssh", ".aws", ".gnupg", ".netrc", ".pgpass", ".npmrc", ".pypirc", ".git-credentials", ".Xauthority"),
    *(".docker/config.json", ".kube", ".azure", ".huggingface", ".password-store", ".local/share/keyrings"),
    *(".config/gh", ".config/gcloud", ".config/hub", ".config/git/credentials", ".cargo/credentials"),
    *(".cargo/credentials.toml", ".terraform.d/credentials.tfrc.json", ".claude/.credentials.json"),
    *(".codex/auth.json", ".kaggle", ".modal.toml", ".vault-token", ".s3cfg", ".boto", ".databrickscfg"),
    *(
        ".config/rclone",
        ".config/wandb",
        ".config/op",
        ".config/doctl",
        ".gitcookies",
        ".my.cnf",
        ".terraformrc",
    ),
    *(
        ".dockercfg",
        ".bash_history",
        ".zsh_history",
        ".python_history",
        ".psql_history",
        ".node_repl_history",
    ),
    *(".mysql_history", ".sqlite_history", ".lesshst", ".local/share/fish/fish_history"),
)
HF_TOKEN_FILES = ("token", "stored_tokens")
# Files a later unconfined program runs or obeys (hooks, `core.fsmonitor` in .git/config, shell start-up):
# read-only even inside writable places.
PROTECTED_IN_ROOTS = (".git/hooks", ".git/config")
PROTECTED_IN_HOME = (".bashrc", ".bash_profile", ".bash_login", ".profile", ".zshrc", ".zprofile", ".zshenv")
PROTECTED_IN_HOME += (".gitconfig", ".config/git/config")
# Caches holding code that the user's own tools later import or run (bash gets its own, CONFINED_CACHES).
CODE_CACHES = ("pip", "uv", "pre-commit", "torch/hub", "torch_extensions")
TMP = Path("/tmp")


@dataclass
class Places:
    """The mounts of one sandbox, in the order bwrap applies them (later ones win)."""

    writable: list[tuple[Path, Path]] = field(default_factory=list)  # (host source, sandbox path)
    anchored: list[Path] = field(default_factory=list)  # own mount points: cannot be renamed or replaced
    protected: list[Path] = field(default_factory=list)  # read-only again inside a writable place
    hidden: list[Path] = field(default_factory=list)  # an empty tmpfs (dirs) or /dev/null (files)
    shown: list[Path] = field(default_factory=list)  # read-only again inside a hidden place
    notes: list[str] = field(default_factory=list)  # what the scans for pinned files left out

    def mounts(self) -> list[str]:
        """The bwrap arguments that build these places."""
        argv: list[str] = []
        for source, target in sorted(self.writable, key=lambda pair: len(pair[1].parts)):
            argv += ["--bind", str(source), str(target)]
        argv += [arg for path in self.anchored for arg in ("--bind", str(path), str(path))]
        argv += [arg for path in self.protected for arg in ("--ro-bind", str(path), str(path))]
        for path in self.hidden:
            argv += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
        argv += [arg for path in self.shown for arg in ("--ro-bind", str(path), str(path))]
        return argv

    def describe(self) -> str:
        """The writable places, for the model."""
        return ", ".join(str(target) for _, target in self.writable)


def sandbox_places(config: AgentConfig, workdir: Path, home: Path, environ: Mapping[str, str]) -> Places:
    """The places of a confined command run for `workdir`, `home` being ML_INTERN_HOME."""
    user_home = Path(environ.get("HOME") or Path.home())
    roots = [workdir.resolve(), *existing_dirs(expand(root, user_home, workdir) for root in config.roots)]
    binds = [*roots, *existing_dirs(download_caches(user_home, environ), create=True), *extra_tmpdir(environ)]
    places = Places(writable=[(path, path) for path in binds] + [(private_tmp(home), TMP)])
    seen = list(binds)  # what of the host shows through under /tmp: only these binds

    def visible(path: Path) -> bool:
        return not path.is_relative_to(TMP) or inside_any(path, seen)

    writable = [target for _, target in places.writable]
    places.anchored = [
        root / ".git" for root in roots if (root / ".git").exists() and not (root / ".git").is_symlink()
    ]
    protected = [root / name for root in roots for name in PROTECTED_IN_ROOTS]
    protected += [user_home / name for name in PROTECTED_IN_HOME]
    protected += existing_dirs(code_caches(user_home, environ), create=True)
    protected += hub_code_blobs(hub_caches(user_home, environ), places.notes)
    protected += hard_linked(roots, places.notes)
    places.protected = [p for p in real_existing(protected) if visible(p) and inside_any(p, writable)]
    hidden = real_existing(hidden_paths(config, user_home, home, workdir, environ))
    places.hidden = [p for p in hidden if visible(p) and not any(root.is_relative_to(p) for root in roots)]
    places.shown = existing_dirs([home / "outputs"], create=True)  # spilled output, read back by commands
    return places


def hf_home(user_home: Path, environ: Mapping[str, str]) -> Path:
    return Path(environ.get("HF_HOME") or cache_home(user_home, environ) / "huggingface")


def hub_caches(user_home: Path, environ: Mapping[str, str]) -> list[Path]:
    """Where the Hub cache keeps downloaded repos ($HF_HUB_CACHE, else $HF_HOME/hub)."""
    return [Path(environ.get("HF_HUB_CACHE") or hf_home(user_home, environ) / "hub")]


def code_caches(user_home: Path, environ: Mapping[str, str]) -> list[Path]:
    """The user's caches of code (pip and uv wheels, pre-commit hooks, torch hub, remote-code modules)."""
    cache = cache_home(user_home, environ)
    modules = Path(environ.get("HF_MODULES_CACHE") or hf_home(user_home, environ) / "modules")
    torch_hub = Path(environ["TORCH_HOME"]) / "hub" if environ.get("TORCH_HOME") else cache / "torch/hub"
    return [*(cache / name for name in CODE_CACHES), modules, torch_hub]


def extra_tmpdir(environ: Mapping[str, str]) -> list[Path]:
    """$TMPDIR when it is a directory outside /tmp (inside, the private /tmp stands for it)."""
    found = existing_dirs([Path(environ["TMPDIR"])]) if environ.get("TMPDIR") else []
    return [path for path in found if not path.is_relative_to(TMP)]


def hidden_paths(
    config: AgentConfig, user_home: Path, home: Path, workdir: Path, environ: Mapping[str, str]
) -> list[Path]:
    """Credential locations (the workdir's `.env` too), the user's runtime sockets, ML_INTERN_HOME and
    `bash.hidden_paths`."""
    paths = [user_home / name for name in HIDDEN_IN_HOME]
    paths += [hf_home(user_home, environ) / name for name in HF_TOKEN_FILES]
    paths += [Path(environ[name]) for name in ("HF_TOKEN_PATH", "HF_STORED_TOKENS_PATH") if environ.get(name)]
    config_home = Path(environ.get("XDG_CONFIG_HOME") or user_home / ".config")
    paths += [config_home / "ml-intern", home, Path(f"/run/user/{os.getuid()}")]
    paths.append(workdir / ".env")  # where ml-intern itself reads HF_TOKEN and its other credentials from
    paths += [Path("/run/docker.sock"), Path("/var/run/docker.sock")]
    if environ.get("ML_INTERN_CONFIG"):
        paths.append(expand(environ["ML_INTERN_CONFIG"], user_home, workdir))
    return paths + [expand(path, user_home, workdir) for path in config.bash.hidden_paths]


def cache_home(user_home: Path, environ: Mapping[str, str]) -> Path:
    return Path(environ.get("XDG_CACHE_HOME") or user_home / ".cache")


def download_caches(user_home: Path, environ: Mapping[str, str]) -> list[Path]:
    """~/.cache (or $XDG_CACHE_HOME) and $HF_HOME: where models, datasets and wheels are downloaded."""
    return [cache_home(user_home, environ), *([Path(environ["HF_HOME"])] if environ.get("HF_HOME") else [])]


def private_tmp(home: Path) -> Path:
    """Our own directory for the sandbox's /tmp: under the system temp dir if it is safely ours, else home."""
    path = Path(tempfile.gettempdir()) / f"ml-intern-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077:
            return path
    except OSError:
        pass
    path = home / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def expand(path: str, user_home: Path, workdir: Path) -> Path:
    """`~` expanded against `user_home`; relative paths against the working directory."""
    if path == "~" or path.startswith("~/"):
        return user_home / path[2:]
    return workdir / path


def existing_dirs(paths: Iterable[Path], create: bool = False) -> list[Path]:
    """The resolved paths that are directories (created first when `create`)."""
    found = []
    for path in paths:
        if create:
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError:
                continue
        if path.is_dir():
            found.append(path.resolve())
    return found


def real_existing(paths: Iterable[Path]) -> list[Path]:
    """Each existing path resolved through symlinks (a mount lands on the target), without duplicates."""
    found: list[Path] = []
    for path in paths:
        if os.path.lexists(path) and (real := path.resolve()).exists() and real not in found:
            found.append(real)
    return found


def inside_any(path: Path, places: list[Path]) -> bool:
    return any(path.is_relative_to(place) for place in places)
