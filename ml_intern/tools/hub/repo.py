"""`hf_repo_files`: list, read, upload and delete files in Hub repos; uploads and deletions need approval."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from huggingface_hub import CommitOperationDelete, HfApi, hf_hub_url
from huggingface_hub.utils import filter_repo_objects
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from ml_intern.tools.args import parse_args, tool_schema
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.hub.client import download_text, hub_call, make_api, repo_url
from ml_intern.tools.hub.file_text import MAX_READ_BYTES, human_size, numbered_lines, upload_preview
from ml_intern.tools.hub.provenance import provenance_note

MAX_LISTED = 200
DEFAULT_LINES = 400

DESCRIPTION = (
    "Hub repo files. upload: content or local_path; create_pr, or revision=refs/pr/N. "
    "delete: path, folder/ or patterns."
)


class RepoFilesArgs(BaseModel):
    operation: Literal["list", "read", "upload", "delete"]
    repo_id: str
    repo_type: Literal["model", "dataset", "space"] = "model"
    path: str = ""
    revision: str = ""
    content: str = ""
    local_path: str = ""
    patterns: list[str] = []
    offset: int = 0  # 0: line 1
    limit: int = 0  # 0: DEFAULT_LINES
    max_chars: int = Field(0, description="read: at most this many characters (the original's name).")
    commit_message: str = ""
    create_pr: bool = False


def arg(args: dict[str, Any], key: str, default: Any = "") -> Any:
    """`args[key]` with a default for missing or null values (approval rules see raw model arguments)."""
    value = args.get(key)
    return default if value is None else value


def flag(value: Any, default: bool = False) -> bool:
    """A raw boolean argument read the way pydantic will read it ("false", 0 and "no" are false)."""
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off", "f", "n", "")
    return bool(value)


def target_of(args: dict[str, Any]) -> str:
    """'repo_type org/name@revision' for messages."""
    return f"{arg(args, 'repo_type', 'model')} {arg(args, 'repo_id', '?')}@{arg(args, 'revision') or 'main'}"


def local_file(local_path: str, base: Path) -> Path:
    """A local path, relative ones taken from `base`."""
    path = Path(local_path).expanduser()
    return path if path.is_absolute() else base / path


def needs_approval(args: dict[str, Any], env: ToolEnv) -> str | None:
    """Uploads and deletions change a repo: say what would change (repo, path, size, a preview)."""
    operation = arg(args, "operation")
    as_pr = " as a new PR" if flag(args.get("create_pr")) else ""
    if operation == "upload":
        source = local_file(arg(args, "local_path"), env.workdir) if arg(args, "local_path") else None
        path = arg(args, "path") or (source.name if source else "?")
        size, preview = upload_preview(str(arg(args, "content")), source)
        return f"upload {path} ({size}) to {target_of(args)}{as_pr}: {preview}"
    if operation == "delete":
        patterns = arg(args, "patterns", [])
        patterns = [patterns] if isinstance(patterns, str) else patterns
        what = ", ".join(map(str, patterns)) or arg(args, "path") or "?"
        return f"delete {what} from {target_of(args)}{as_pr}"
    return None


def list_files(api: HfApi, endpoint: str, a: RepoFilesArgs) -> str:
    """The repo's files (under `path`) with sizes, capped at MAX_LISTED entries."""
    entries = api.list_repo_tree(
        a.repo_id,
        path_in_repo=a.path or None,
        recursive=True,
        repo_type=a.repo_type,
        revision=a.revision or None,
    )
    files = [(entry.path, getattr(entry, "size", None)) for entry in entries]
    files = [(path, size) for path, size in files if size is not None]  # folders are implied by the paths
    total = sum(size for _, size in files)
    url = f"{repo_url(endpoint, a.repo_id, a.repo_type)}/tree/{a.revision or 'main'}"
    lines = [f"{a.repo_id} ({len(files)} files, {human_size(total)}) {url}"]
    lines += [f"{path}  {human_size(size)}" for path, size in sorted(files)[:MAX_LISTED]]
    if len(files) > MAX_LISTED:
        lines.append(f"[showing {MAX_LISTED} of {len(files)} files; pass path=<folder> to list one folder]")
    return "\n".join(lines) if files else f"No files in {a.repo_id} under '{a.path or '/'}'."


def read_file(api: HfApi, a: RepoFilesArgs) -> str:
    """Numbered lines of a text file, refusing files too big or binary to show."""
    if not a.path:
        raise ToolError("read needs path, e.g. path='config.json' (operation=list shows the files).")
    url = hf_hub_url(
        a.repo_id, a.path, repo_type=a.repo_type, revision=a.revision or None, endpoint=api.endpoint
    )
    size = api.get_hf_file_metadata(url=url).size or 0
    if size > MAX_READ_BYTES:
        raise ToolError(
            f"{a.path} is {human_size(size)}, too big to read here (max {human_size(MAX_READ_BYTES)}); "
            "download it in a job or sandbox, or use hf_inspect_dataset for dataset files."
        )
    data = download_text(api, a.repo_id, a.path, a.repo_type, a.revision or None)
    limit = a.limit or DEFAULT_LINES
    return numbered_lines(f"{a.repo_id}/{a.path}", data, a.offset or 1, limit, a.max_chars)


def upload(api: HfApi, env: ToolEnv, a: RepoFilesArgs) -> str:
    """Commit one file (text content or a local file) to the repo, or open a PR with it; a push to main is
    then registered (provenance.py)."""
    if bool(a.content) == bool(a.local_path):
        raise ToolError("upload needs exactly one of content (text) or local_path (a local file).")
    source = local_file(a.local_path, env.workdir) if a.local_path else None
    if source is not None and not source.is_file():
        raise ToolError(f"local_path {source} is not a file.")
    data = source.read_bytes() if source else a.content.encode()
    path = a.path or (source.name if source else "")
    if not path:
        raise ToolError("upload needs path: where to put the content in the repo.")
    info = api.upload_file(
        path_or_fileobj=data,
        path_in_repo=path,
        repo_id=a.repo_id,
        repo_type=a.repo_type,
        revision=a.revision or None,
        commit_message=a.commit_message or f"Upload {path}",
        create_pr=a.create_pr,
    )
    if a.create_pr:
        more = f"add commits with revision='refs/pr/{info.pr_num}'"
        return f"Opened PR #{info.pr_num} with {path}: {info.pr_url} ({more})"
    done = (
        f"Uploaded {path} ({human_size(len(data))}) to {a.repo_id}@{a.revision or 'main'}: {info.commit_url}"
    )
    if a.revision not in ("", "main") or info.pr_url:
        return done
    return done + provenance_note(api, env, a.repo_id, a.repo_type)


def delete(api: HfApi, a: RepoFilesArgs) -> str:
    """Delete the files matching `patterns`, or `path` (a folder when it ends with '/'), in one commit."""
    if not a.patterns and not a.path:
        raise ToolError(
            "delete needs path (a file, or a folder ending with /) or patterns such as ['*.tmp']."
        )
    files = api.list_repo_files(a.repo_id, repo_type=a.repo_type, revision=a.revision or None)
    if a.patterns:
        matched = list(filter_repo_objects(files, allow_patterns=a.patterns))
    elif a.path.endswith("/"):
        matched = [file for file in files if file.startswith(a.path)]
    else:
        matched = [file for file in files if file == a.path]
    matched = [file for file in matched if file != ".gitattributes"]
    if not matched:
        raise ToolError(f"Nothing to delete: no file of {a.repo_id} matches {a.patterns or a.path}.")
    info = api.create_commit(
        a.repo_id,
        [CommitOperationDelete(path_in_repo=file) for file in matched],
        commit_message=a.commit_message or f"Delete {', '.join(a.patterns) or a.path}",
        repo_type=a.repo_type,
        revision=a.revision or None,
        create_pr=a.create_pr,
    )
    shown = ", ".join(matched[:20]) + (f" (+{len(matched) - 20} more)" if len(matched) > 20 else "")
    return f"Deleted {len(matched)} file(s) from {a.repo_id}: {shown}. {info.pr_url or info.commit_url}"


def make_tools(env: ToolEnv) -> list[BaseTool]:
    """Build `hf_repo_files` against the run's Hub endpoint and working directory."""
    api = make_api(env)

    async def hf_repo_files(**kwargs: Any) -> str:
        a = parse_args(RepoFilesArgs, kwargs)
        operations = {
            "list": lambda: list_files(api, env.hf_endpoint, a),
            "read": lambda: read_file(api, a),
            "upload": lambda: upload(api, env, a),
            "delete": lambda: delete(api, a),
        }
        what = f"running {a.operation} on {a.repo_type} repo {a.repo_id}"
        write = a.operation in ("upload", "delete")
        return await hub_call(
            api, operations[a.operation], what, repo_id=a.repo_id, repo_types=[a.repo_type], write=write
        )

    return [
        StructuredTool.from_function(
            coroutine=hf_repo_files,
            name="hf_repo_files",
            description=DESCRIPTION,
            args_schema=tool_schema(RepoFilesArgs),
        )
    ]
