"""Provenance for pushes made by the programs the agent runs: local bash and HF Jobs get ml-intern's
sitecustomize (`site/sitecustomize.py`) on PYTHONPATH, with the run's settings in environment variables."""

from __future__ import annotations

import base64
import gzip
import shlex
from collections.abc import Mapping
from pathlib import Path

from ml_intern.tools.base import ToolEnv
from ml_intern.tools.hub.provenance import thread_collection

SITE_DIR = Path(__file__).parent / "site"
JOB_SITE_DIR = "/tmp/ml-intern-site"
SHIPPED = {  # file written in the job's site dir -> its source here
    "sitecustomize.py": SITE_DIR / "sitecustomize.py",
    "_ml_intern_provenance.py": Path(__file__).parent / "provenance.py",
}


def provenance_variables(env: ToolEnv) -> dict[str, str]:
    """What the sitecustomize reads: whether to tag cards, the collection title ('' for none); {} when
    provenance is off (nothing to tag, no collection)."""
    tag = "1" if env.config.provenance.tag_repos else "0"
    collection = thread_collection(env)
    if tag == "0" and not collection:
        return {}
    return {"ML_INTERN_PROVENANCE_TAG": tag, "ML_INTERN_COLLECTION": collection}


def bash_environment(child_env: Mapping[str, str], env: ToolEnv) -> dict[str, str]:
    """A bash child environment with the sitecustomize first on PYTHONPATH (unchanged: provenance off)."""
    variables = provenance_variables(env)
    if not variables:
        return dict(child_env)
    path = [str(SITE_DIR), *filter(None, child_env.get("PYTHONPATH", "").split(":"))]
    return {**child_env, **variables, "PYTHONPATH": ":".join(path)}


def packed(source: Path) -> str:
    """A file's text gzipped and base64-encoded: shell-safe, a third of its size."""
    return base64.b64encode(gzip.compress(source.read_bytes(), mtime=0)).decode()


def job_bootstrap(command: list[str], env: ToolEnv) -> list[str]:
    """`command` run by sh after writing the sitecustomize into the job and putting it on PYTHONPATH;
    its arguments reach it unchanged ("$@"). Writing failures leave the command to run as it is."""
    variables = provenance_variables(env)
    if not variables:
        return list(command)
    site = JOB_SITE_DIR
    writes = " && ".join(
        f"printf %s {packed(source)} | base64 -d | gzip -dc > {site}/{name}"
        for name, source in SHIPPED.items()
    )
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in variables.items())
    script = (
        f"{{ mkdir -p {site} && {writes}; }} 2>/dev/null"
        f' && export PYTHONPATH="{site}${{PYTHONPATH:+:$PYTHONPATH}}" {exports}; exec "$@"'
    )
    return ["sh", "-c", script, "ml-intern", *command]
