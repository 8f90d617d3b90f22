"""`hf_repo_git`: branches, tags, pull requests and repo settings on the Hub; risky ones need approval."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from huggingface_hub import HfApi
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel

from ml_intern.tools.args import parse_args, tool_schema
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.hub.client import hub_call, make_api, repo_url
from ml_intern.tools.hub.provenance import provenance_note
from ml_intern.tools.hub.repo import arg, card_note, flag

MAX_LISTED_PRS = 20
READ_ONLY = {"list_refs", "list_prs", "get_pr"}

DESCRIPTION = (
    "Hub repo git ops. create_pr makes an empty draft: add files via hf_repo_files revision=refs/pr/N. "
    "Spaces need space_sdk."
)


class RepoGitArgs(BaseModel):
    operation: Literal[
        "list_refs", "create_branch", "delete_branch", "create_tag", "delete_tag",
        "create_pr", "list_prs", "get_pr", "merge_pr", "close_pr", "comment_pr",
        "create_repo", "update_repo", "change_pr_status",
    ]  # fmt: skip
    repo_id: str
    repo_type: Literal["model", "dataset", "space"] = "model"
    branch: str = ""
    tag: str = ""
    revision: str = ""
    title: str = ""
    description: str = ""
    pr_num: int = 0
    comment: str = ""
    status: Literal["open", "closed", "all"] | None = None  # None: open
    # change_pr_status, the original's operation: taken but not shown in the prompt (hub/__init__.py).
    new_status: Literal["open", "closed"] | None = None
    private: bool | None = None
    gated: Literal["auto", "manual", "false"] | None = None
    space_sdk: Literal["gradio", "streamlit", "docker", "static"] | None = None


def needs_approval(args: dict[str, Any], env: ToolEnv) -> str | None:
    """Deleting refs, merging and creating or reconfiguring repos need a human's yes."""
    operation = arg(args, "operation")
    repo = f"{arg(args, 'repo_type', 'model')} repo {arg(args, 'repo_id', '?')}"
    if operation == "delete_branch":
        return f"delete branch {arg(args, 'branch', '?')} of {repo}"
    if operation == "delete_tag":
        return f"delete tag {arg(args, 'tag', '?')} of {repo}"
    if operation == "merge_pr":
        return f"merge PR #{arg(args, 'pr_num', '?')} into {repo}"
    if operation == "create_repo":
        visibility = "private" if flag(args.get("private"), default=True) else "public"
        return f"create {visibility} {repo}{card_note(args, env)}"
    if operation == "update_repo":
        changes = [f"{key}={args[key]}" for key in ("private", "gated") if args.get(key) is not None]
        return f"change settings of {repo}: {', '.join(changes) or 'nothing'}"
    return None


def require(a: RepoGitArgs, *names: str) -> None:
    """Fail with a clear message when an operation's arguments are missing."""
    missing = [name for name in names if not getattr(a, name)]
    if missing:
        raise ToolError(f"{a.operation} needs {', '.join(missing)}.")


def list_refs(api: HfApi, url: str, a: RepoGitArgs) -> str:
    refs = api.list_repo_refs(a.repo_id, repo_type=a.repo_type)
    branches = ", ".join(f"{b.name} ({b.target_commit[:8]})" for b in refs.branches) or "none"
    tags = ", ".join(f"{t.name} ({t.target_commit[:8]})" for t in refs.tags) or "none"
    return f"{a.repo_id} {url}\nBranches: {branches}\nTags: {tags}"


def create_branch(api: HfApi, url: str, a: RepoGitArgs) -> str:
    require(a, "branch")
    api.create_branch(a.repo_id, branch=a.branch, revision=a.revision or None, repo_type=a.repo_type)
    return f"Created branch {a.branch} from {a.revision or 'main'}: {url}/tree/{a.branch}"


def delete_branch(api: HfApi, url: str, a: RepoGitArgs) -> str:
    require(a, "branch")
    api.delete_branch(a.repo_id, branch=a.branch, repo_type=a.repo_type)
    return f"Deleted branch {a.branch} of {a.repo_id}."


def create_tag(api: HfApi, url: str, a: RepoGitArgs) -> str:
    require(a, "tag")
    revision = a.revision or None
    api.create_tag(
        a.repo_id, tag=a.tag, tag_message=a.description or None, revision=revision, repo_type=a.repo_type
    )
    return f"Created tag {a.tag} on {a.revision or 'main'}: {url}/tree/{a.tag}"


def delete_tag(api: HfApi, url: str, a: RepoGitArgs) -> str:
    require(a, "tag")
    api.delete_tag(a.repo_id, tag=a.tag, repo_type=a.repo_type)
    return f"Deleted tag {a.tag} of {a.repo_id}."


def create_pr(api: HfApi, url: str, a: RepoGitArgs) -> str:
    require(a, "title")
    pr = api.create_pull_request(
        a.repo_id, title=a.title, description=a.description or None, repo_type=a.repo_type
    )
    return (
        f"Opened draft PR #{pr.num}: {url}/discussions/{pr.num}\n"
        f"Add commits with hf_repo_files upload, revision='refs/pr/{pr.num}'."
    )


def list_prs(api: HfApi, url: str, a: RepoGitArgs) -> str:
    shown = a.status or "open"
    status = None if shown == "all" else shown
    found = list(api.get_repo_discussions(a.repo_id, repo_type=a.repo_type, discussion_status=status))
    if not found:
        return f"No {shown} discussions or PRs in {a.repo_id}."
    lines = [f"{a.repo_id}: {len(found)} {shown} discussions/PRs {url}/discussions"]
    for d in found[:MAX_LISTED_PRS]:
        kind = "PR" if d.is_pull_request else "discussion"
        lines.append(f"#{d.num} [{kind}, {d.status}] {d.title} (by {d.author}, {d.created_at:%Y-%m-%d})")
    if len(found) > MAX_LISTED_PRS:
        lines.append(f"[showing {MAX_LISTED_PRS} of {len(found)}]")
    return "\n".join(lines)


def get_pr(api: HfApi, url: str, a: RepoGitArgs) -> str:
    require(a, "pr_num")
    pr = api.get_discussion_details(a.repo_id, a.pr_num, repo_type=a.repo_type)
    kind = "PR" if pr.is_pull_request else "Discussion"
    lines = [f"{kind} #{pr.num}: {pr.title} [{pr.status}] by {pr.author} {url}/discussions/{pr.num}"]
    if pr.is_pull_request:
        lines.append(f"Target: {pr.target_branch}; add commits with revision='refs/pr/{pr.num}'")
    comments = [event for event in pr.events if event.type == "comment"]
    lines += [f"- {c.author}: {' '.join(c.content.split())[:300]}" for c in comments[-10:]]
    return "\n".join(lines)


def merge_pr(api: HfApi, url: str, a: RepoGitArgs) -> str:
    require(a, "pr_num")
    api.merge_pull_request(a.repo_id, a.pr_num, comment=a.comment or None, repo_type=a.repo_type)
    return f"Merged PR #{a.pr_num}: {url}/discussions/{a.pr_num}"


def close_pr(api: HfApi, url: str, a: RepoGitArgs) -> str:
    require(a, "pr_num")
    api.change_discussion_status(
        a.repo_id, a.pr_num, "closed", comment=a.comment or None, repo_type=a.repo_type
    )
    return f"Closed #{a.pr_num}: {url}/discussions/{a.pr_num}"


def change_pr_status(api: HfApi, url: str, a: RepoGitArgs) -> str:
    """The original's operation: reopen (new_status='open') or close a PR or discussion."""
    require(a, "pr_num", "new_status")
    status = "open" if a.new_status == "open" else "closed"
    api.change_discussion_status(
        a.repo_id, a.pr_num, status, comment=a.comment or None, repo_type=a.repo_type
    )
    done = "Reopened" if status == "open" else "Closed"
    return f"{done} #{a.pr_num}: {url}/discussions/{a.pr_num}"


def comment_pr(api: HfApi, url: str, a: RepoGitArgs) -> str:
    require(a, "pr_num", "comment")
    api.comment_discussion(a.repo_id, a.pr_num, a.comment, repo_type=a.repo_type)
    return f"Commented on #{a.pr_num}: {url}/discussions/{a.pr_num}"


def create_repo(api: HfApi, url: str, a: RepoGitArgs) -> str:
    if a.repo_type == "space" and not a.space_sdk:
        raise ToolError("create_repo of a space needs space_sdk (gradio, streamlit, docker or static).")
    private = True if a.private is None else a.private
    created = api.create_repo(a.repo_id, repo_type=a.repo_type, private=private, space_sdk=a.space_sdk)
    return f"Created {'private' if private else 'public'} {a.repo_type} repo: {created}"


def registered(operation: Callable[[HfApi, str, RepoGitArgs], str], env: ToolEnv):
    """`operation` (create_repo) followed by the new repo's registration (provenance.py)."""

    def run(api: HfApi, url: str, a: RepoGitArgs) -> str:
        done = operation(api, url, a)
        return done + provenance_note(api, env, a.repo_id, a.repo_type)

    return run


def update_repo(api: HfApi, url: str, a: RepoGitArgs) -> str:
    if a.private is None and a.gated is None:
        raise ToolError("update_repo needs private (true/false) or gated ('auto', 'manual' or 'false').")
    gated = None if a.gated is None else (False if a.gated == "false" else a.gated)
    api.update_repo_settings(a.repo_id, private=a.private, gated=gated, repo_type=a.repo_type)
    changes = [
        f"{key}={value}" for key, value in (("private", a.private), ("gated", a.gated)) if value is not None
    ]
    return f"Updated {a.repo_id}: {', '.join(changes)} ({url}/settings)"


OPERATIONS: dict[str, Callable[[HfApi, str, RepoGitArgs], str]] = {
    "list_refs": list_refs,
    "create_branch": create_branch,
    "delete_branch": delete_branch,
    "create_tag": create_tag,
    "delete_tag": delete_tag,
    "create_pr": create_pr,
    "list_prs": list_prs,
    "get_pr": get_pr,
    "merge_pr": merge_pr,
    "close_pr": close_pr,
    "comment_pr": comment_pr,
    "change_pr_status": change_pr_status,
    "create_repo": create_repo,
    "update_repo": update_repo,
}


def make_tools(env: ToolEnv) -> list[BaseTool]:
    """Build `hf_repo_git` against the run's Hub endpoint."""
    api = make_api(env)

    async def hf_repo_git(**kwargs: Any) -> str:
        a = parse_args(RepoGitArgs, kwargs)
        url = repo_url(env.hf_endpoint, a.repo_id, a.repo_type)
        run = OPERATIONS[a.operation]
        run = registered(run, env) if a.operation == "create_repo" else run
        what = f"running {a.operation} on {a.repo_type} repo {a.repo_id}"
        write = a.operation not in READ_ONLY
        return await hub_call(
            api, lambda: run(api, url, a), what, repo_id=a.repo_id, repo_types=[a.repo_type], write=write
        )

    return [
        StructuredTool.from_function(
            coroutine=hf_repo_git,
            name="hf_repo_git",
            description=DESCRIPTION,
            args_schema=tool_schema(RepoGitArgs),
        )
    ]
