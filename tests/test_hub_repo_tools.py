"""hf_repo_files and hf_repo_git on a fake Hub: results, the requests the Hub receives, approval reasons."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

import ml_intern.tools.hub.repo as hub_repo
import ml_intern.tools.hub.repo_git as hub_repo_git
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.registry import offered, tool_facts
from tests.fakes.hub_server import FakeHub

TOKEN = "hf_test"
REPO = "alice/tiny-model"


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub(token=TOKEN) as server:
        files = {
            ".gitattributes": b"*.bin filter=lfs\n",
            "README.md": b"# Tiny\n",
            "train.py": "".join(f"print({n})\n" for n in range(1, 1001)).encode(),
            "logs/a.tmp": b"x",
            "logs/b.tmp": b"y",
            "weights.bin": b"\x00\x01" * 100,
        }
        server.add_repo(REPO, files=files)
        yield server


PROVENANCE_OFF = {"provenance": {"tag_repos": False, "collection": False}}  # tests/test_provenance.py


def tools(hub: FakeHub, sandbox, token: str | None = TOKEN, config: dict = PROVENANCE_OFF) -> dict:
    workdir, home = sandbox.workdir, sandbox.ml_intern_home
    env = ToolEnv(workdir=workdir, home=home, config=config, hf_endpoint=hub.url, hf_token=token)
    # As the model gets them: the original's argument names taken, unknown ones rejected (tools/checked.py).
    made = [tool for module in (hub_repo, hub_repo_git) for tool in module.make_tools(env)]
    return {tool.name: offered(tool) for tool in made}


async def files_op(hub: FakeHub, sandbox, operation: str, token: str | None = TOKEN, **args) -> str:
    return await tools(hub, sandbox, token)["hf_repo_files"].ainvoke(
        {"operation": operation, "repo_id": REPO} | args
    )


async def git_op(hub: FakeHub, sandbox, operation: str, **args) -> str:
    return await tools(hub, sandbox)["hf_repo_git"].ainvoke({"operation": operation, "repo_id": REPO} | args)


async def test_list_shows_files_with_sizes(hub, sandbox):
    out = await files_op(hub, sandbox, "list")
    assert out.startswith(f"{REPO} (6 files, 10.9 KB) {hub.url}/{REPO}/tree/main")
    assert "\nlogs/a.tmp  1 B\n" in out and "\ntrain.py  10.6 KB\n" in out


async def test_list_is_capped_and_says_how_to_narrow(hub, sandbox):
    hub.repos[("model", REPO)].files |= {f"data/shard-{n:04d}.json": b"{}" for n in range(300)}
    out = await files_op(hub, sandbox, "list")
    assert len(out.splitlines()) == 202
    assert out.endswith("[showing 200 of 306 files; pass path=<folder> to list one folder]")


async def test_read_numbers_lines_and_says_where_to_continue(hub, sandbox):
    out = await files_op(hub, sandbox, "read", path="train.py", offset=10, limit=3)
    assert out.splitlines() == [
        f"{REPO}/train.py (1000 lines, 10.6 KB), lines 10-12:",
        "    10\tprint(10)",
        "    11\tprint(11)",
        "    12\tprint(12)",
        "[more: read with offset=13]",
    ]


async def test_read_is_bounded_in_characters(hub, sandbox):
    hub.repos[("model", REPO)].files["big.txt"] = ("y" * 900 + "\n").encode() * 200
    out = await files_op(hub, sandbox, "read", path="big.txt", limit=10_000)
    assert len(out) < 21_000
    assert out.endswith("[more: read with offset=23]")


async def test_read_refuses_binary_and_huge_files(hub, sandbox):
    with pytest.raises(ToolError, match="weights.bin is a binary file"):
        await files_op(hub, sandbox, "read", path="weights.bin")
    hub.repos[("model", REPO)].files["huge.txt"] = b"z" * (11 * 1024 * 1024)
    with pytest.raises(ToolError, match="huge.txt is 11.0 MB, too big to read here"):
        await files_op(hub, sandbox, "read", path="huge.txt")
    assert hub.find("HEAD", "huge.txt") and not hub.find("GET", "huge.txt")  # refused before downloading


async def test_read_of_a_missing_file_says_how_to_find_files(hub, sandbox):
    with pytest.raises(
        ToolError, match="File not found while running read on model repo alice/tiny-model; .* hf_repo_files"
    ):
        await files_op(hub, sandbox, "read", path="nope.py")


async def test_upload_commits_the_content_with_the_token(hub, sandbox):
    out = await files_op(hub, sandbox, "upload", path="notes/plan.md", content="# Plan\nstep 1\n")
    (commit,) = hub.find("POST", f"^/api/models/{REPO}/commit/main$")
    header, operation = commit.ndjson()
    assert header["value"]["summary"] == "Upload notes/plan.md"
    assert operation == {
        "key": "file",
        "value": {
            "path": "notes/plan.md",
            "encoding": "base64",
            "content": base64.b64encode(b"# Plan\nstep 1\n").decode(),
        },
    }
    assert commit.headers["authorization"] == f"Bearer {TOKEN}"
    assert hub.repos[("model", REPO)].files["notes/plan.md"] == b"# Plan\nstep 1\n"
    assert out.startswith(f"Uploaded notes/plan.md (14 B) to {REPO}@main: {hub.url}/{REPO}/commit/")


async def test_upload_sends_a_local_file_relative_to_the_workdir(hub, sandbox):
    (sandbox.workdir / "out").mkdir()
    (sandbox.workdir / "out" / "metrics.json").write_text('{"acc": 0.9}')
    out = await files_op(hub, sandbox, "upload", local_path="out/metrics.json", commit_message="Add metrics")
    assert "Uploaded metrics.json (12 B)" in out
    assert hub.repos[("model", REPO)].files["metrics.json"] == b'{"acc": 0.9}'
    assert hub.find("POST", "/commit/")[0].ndjson()[0]["value"]["summary"] == "Add metrics"


async def test_upload_as_a_pull_request(hub, sandbox):
    out = await files_op(hub, sandbox, "upload", path="README.md", content="# Better\n", create_pr=True)
    assert hub.find("POST", "/commit/main$")[0].arg("create_pr") == "1"
    assert out == (
        f"Opened PR #1 with README.md: {hub.url}/{REPO}/discussions/1 (add commits with revision='refs/pr/1')"
    )
    assert hub.repos[("model", REPO)].files["README.md"] == b"# Tiny\n"  # main is untouched


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"path": "a.txt"}, "exactly one of content"),
        ({"path": "a.txt", "content": "x", "local_path": "a.txt"}, "exactly one of content"),
        ({"local_path": "missing.txt"}, "is not a file"),
    ],
)
async def test_bad_uploads_send_nothing(hub, sandbox, args, message):
    with pytest.raises(ToolError, match=message):
        await files_op(hub, sandbox, "upload", **args)
    assert hub.requests == []


async def test_delete_by_pattern_keeps_gitattributes(hub, sandbox):
    out = await files_op(hub, sandbox, "delete", patterns=["*.tmp", ".gitattributes"])
    deleted = [line["value"]["path"] for line in hub.find("POST", "/commit/")[0].ndjson()[1:]]
    assert deleted == ["logs/a.tmp", "logs/b.tmp"]
    assert out.startswith("Deleted 2 file(s) from alice/tiny-model: logs/a.tmp, logs/b.tmp.")
    assert ".gitattributes" in hub.repos[("model", REPO)].files


async def test_delete_a_folder_and_nothing_when_nothing_matches(hub, sandbox):
    await files_op(hub, sandbox, "delete", path="logs/")
    assert not any(path.startswith("logs/") for path in hub.repos[("model", REPO)].files)
    with pytest.raises(ToolError, match="Nothing to delete"):
        await files_op(hub, sandbox, "delete", patterns=["*.ckpt"])
    assert len(hub.find("POST", "/commit/")) == 1


async def test_writes_without_token_explain_how_to_authenticate(hub, sandbox):
    with pytest.raises(
        ToolError, match=r"Not authorised \(HTTP 401\) while running upload on .*HF_TOKEN.*hf auth login"
    ):
        await files_op(hub, sandbox, "upload", token=None, path="a.txt", content="x")
    assert "authorization" not in hub.find("POST", "/preupload/")[0].headers


def rule_env() -> ToolEnv:
    """The run environment approval rules see: the sandbox's working directory (provenance's card note aside:
    tests/test_provenance.py covers it)."""
    return ToolEnv(workdir=Path.cwd(), home=Path.cwd(), config={"provenance": {"tag_repos": False}})


def test_upload_and_delete_approval_reasons_show_what_would_change(sandbox):
    upload = {"operation": "upload", "repo_id": REPO, "path": "train.py", "content": "import torch\n" * 20}
    reason = hub_repo.needs_approval(upload, rule_env())
    preview = "import torch\\n" * 6 + "im..."
    assert reason == f'upload train.py (260 B) to model {REPO}@main: "{preview}"'
    (sandbox.workdir / "cfg.yaml").write_text("lr: 0.1\n")
    local = {"operation": "upload", "repo_id": REPO, "local_path": "cfg.yaml", "create_pr": True}
    local_reason = hub_repo.needs_approval(local, rule_env())
    assert local_reason.startswith(f"upload cfg.yaml (8 B) to model {REPO}@main as a new PR: local file ")
    assert local_reason.endswith('cfg.yaml, "lr: 0.1\\n"')
    delete = {
        "operation": "delete",
        "repo_id": REPO,
        "repo_type": "dataset",
        "patterns": ["*.tmp"],
        "revision": "dev",
    }
    assert hub_repo.needs_approval(delete, rule_env()) == f"delete *.tmp from dataset {REPO}@dev"


@pytest.mark.parametrize("operation", ["list", "read"])
def test_reading_needs_no_approval(operation):
    assert hub_repo.needs_approval({"operation": operation, "repo_id": REPO}, rule_env()) is None


def test_approval_rules_are_registered_under_the_tool_names():
    assert tool_facts("hf_repo_files").approval is hub_repo.needs_approval
    assert tool_facts("hf_repo_git").approval is hub_repo_git.needs_approval


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({"operation": "delete_branch", "branch": "dev"}, f"delete branch dev of model repo {REPO}"),
        ({"operation": "delete_tag", "tag": "v1"}, f"delete tag v1 of model repo {REPO}"),
        ({"operation": "merge_pr", "pr_num": 3}, f"merge PR #3 into model repo {REPO}"),
        ({"operation": "create_repo", "repo_type": "dataset"}, f"create private dataset repo {REPO}"),
        ({"operation": "create_repo", "private": False}, f"create public model repo {REPO}"),
        ({"operation": "create_repo", "private": "false"}, f"create public model repo {REPO}"),
        ({"operation": "update_repo", "gated": "auto"}, f"change settings of model repo {REPO}: gated=auto"),
        ({"operation": "list_refs"}, None),
        ({"operation": "create_branch", "branch": "dev"}, None),
        ({"operation": "create_tag", "tag": "v1"}, None),
        ({"operation": "create_pr", "title": "t"}, None),
        ({"operation": "list_prs"}, None),
        ({"operation": "get_pr", "pr_num": 1}, None),
        ({"operation": "close_pr", "pr_num": 1}, None),
        ({"operation": "comment_pr", "pr_num": 1, "comment": "hi"}, None),
    ],
)
def test_git_approval_covers_exactly_the_risky_operations(hub, args, reason):
    assert hub_repo_git.needs_approval({"repo_id": REPO} | args, rule_env()) == reason
    assert hub.requests == []  # deciding on approval sends nothing


async def test_branches_and_tags(hub, sandbox):
    assert "Created branch dev from main" in await git_op(hub, sandbox, "create_branch", branch="dev")
    await git_op(hub, sandbox, "create_tag", tag="v1.0", description="first release", revision="dev")
    assert hub.find("POST", f"/api/models/{REPO}/tag/dev$")[0].json() == {
        "tag": "v1.0",
        "message": "first release",
    }
    out = await git_op(hub, sandbox, "list_refs")
    assert "Branches: main (aaaaaaaa), dev (aaaaaaaa)\nTags: v1.0 (aaaaaaaa)" in out
    assert "Deleted tag v1.0" in await git_op(hub, sandbox, "delete_tag", tag="v1.0")
    with pytest.raises(ToolError, match="Revision not found while running delete_branch .*list_refs"):
        await git_op(hub, sandbox, "delete_branch", branch="nope")


async def test_pull_request_flow(hub, sandbox):
    out = await git_op(hub, sandbox, "create_pr", title="Fix card", description="Adds usage")
    assert out.startswith(f"Opened draft PR #1: {hub.url}/{REPO}/discussions/1")
    assert "revision='refs/pr/1'" in out
    await git_op(hub, sandbox, "comment_pr", pr_num=1, comment="Ready")
    details = await git_op(hub, sandbox, "get_pr", pr_num=1)
    assert "PR #1: Fix card [draft] by test-user" in details and "- test-user: Ready" in details
    assert "Merged PR #1" in await git_op(hub, sandbox, "merge_pr", pr_num=1)
    assert "#1 [PR, merged] Fix card" in await git_op(hub, sandbox, "list_prs", status="all")
    assert hub.find("POST", "/discussions/1/comment$")[0].json() == {"comment": "Ready"}


async def test_create_repo_is_private_by_default_and_update_repo_sends_settings(hub, sandbox):
    out = await git_op(hub, sandbox, "create_repo", repo_id="alice/new-model")
    assert out == f"Created private model repo: {hub.url}/alice/new-model"
    assert hub.find("POST", "/api/repos/create$")[0].json() == {
        "name": "new-model",
        "organization": "alice",
        "visibility": "private",
        "type": "model",
    }
    await git_op(hub, sandbox, "update_repo", gated="false", private=False)
    assert hub.find("PUT", f"/api/models/{REPO}/settings$")[0].json() == {
        "gated": False,
        "visibility": "public",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"operation": "create_branch"}, "create_branch needs branch"),
        ({"operation": "comment_pr", "pr_num": 1}, "comment_pr needs comment"),
        ({"operation": "create_repo", "repo_type": "space"}, "needs space_sdk"),
        ({"operation": "update_repo"}, "update_repo needs private"),
        ({"operation": "rename"}, "Invalid arguments: operation"),
    ],
)
async def test_git_argument_errors_are_explained(hub, sandbox, args, message):
    with pytest.raises(ToolError, match=message):
        await tools(hub, sandbox)["hf_repo_git"].ainvoke({"repo_id": REPO} | args)
    assert hub.requests == []


async def test_an_unreachable_hub_becomes_a_tool_error(sandbox):
    config = {"http": {"retry_delay": 0.01}}
    env = ToolEnv(sandbox.workdir, sandbox.ml_intern_home, config, hf_endpoint="http://127.0.0.1:9")
    (tool,) = hub_repo_git.make_tools(env)
    with pytest.raises(ToolError, match=r"Could not reach the Hub at http://127.0.0.1:9 while .*HF_ENDPOINT"):
        await tool.ainvoke({"operation": "list_refs", "repo_id": REPO})


async def test_upload_to_a_missing_repo_says_to_create_it(hub, sandbox):
    with pytest.raises(ToolError, match="Repo not found .* alice/new.*create it first: hf_repo_git"):
        await files_op(hub, sandbox, "upload", repo_id="alice/new", path="a.txt", content="x")
