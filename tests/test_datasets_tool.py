"""hf_inspect_dataset on a fake datasets-server: the audit the model reads, and the requests sent."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

import ml_intern.tools.datasets.tool as datasets
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.registry import offered
from tests.fakes.datasets_server import FakeDatasetsServer, class_label, value
from tests.fakes.hub_server import FakeHub

TOKEN = "hf_test"
REVIEW = "A long, heartfelt review of a film. " * 30


def review_rows(count: int) -> list[dict]:
    return [
        {
            "text": REVIEW if n == 0 else f"review {n}",
            "label": 1 if n % 4 == 0 else 0,
            "source": None if n % 10 == 3 else "web",
        }
        for n in range(count)
    ]


def chat_rows() -> list[dict]:
    system = {"role": "system", "content": "You are helpful."}
    call = {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "search", "arguments": "{}"}}],
    }
    rows = []
    for n in range(20):
        turns = [
            {"role": "user", "content": f"question {n}"},
            {"role": "assistant", "content": f"answer {n}"},
        ]
        if n % 5 == 0:
            turns = [system, turns[0], call, {"role": "tool", "content": "result"}, turns[1]]
        rows.append({"messages": turns if n % 2 else json.dumps(turns), "id": f"c{n}"})
    return rows


@pytest.fixture
def viewer() -> Iterator[FakeDatasetsServer]:
    with FakeDatasetsServer(token=TOKEN) as server:
        server.add_dataset(
            "stanfordnlp/imdb",
            {
                "plain_text": {
                    "test": review_rows(100),
                    "train": review_rows(100),
                    "unsupervised": review_rows(5),
                }
            },
            features={"text": value("string"), "label": class_label("neg", "pos"), "source": value("string")},
            num_rows={("plain_text", "train"): 25_000, ("plain_text", "test"): 25_000},
        )
        server.add_dataset(
            "org/chats",
            {"default": {"train": chat_rows()}},
            features={
                "messages": [{"role": value("string"), "content": value("string")}],
                "id": value("string"),
            },
        )
        yield server


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub(token=TOKEN) as server:
        server.add_repo("stanfordnlp/imdb", "dataset")
        yield server


async def inspect(
    viewer: FakeDatasetsServer, hub: FakeHub, sandbox, token: str | None = TOKEN, **args
) -> str:
    env = ToolEnv(
        workdir=sandbox.workdir,
        home=sandbox.ml_intern_home,
        hf_endpoint=hub.url,
        hf_token=token,
        datasets_server_url=viewer.url,
    )
    (tool,) = map(offered, datasets.make_tools(env))  # as the model gets it (its arguments checked)
    return await tool.ainvoke(args)


async def test_report_covers_status_splits_schema_and_samples(viewer, hub, sandbox):
    out = await inspect(viewer, hub, sandbox, dataset="stanfordnlp/imdb")
    assert out.startswith(f"# stanfordnlp/imdb {hub.url}/datasets/stanfordnlp/imdb")
    assert "## Status\nvalid (viewer, preview, search, filter, statistics)" in out
    assert (
        "- plain_text/test: 25,000 rows\n- plain_text/train: 25,000 rows\n- plain_text/unsupervised: 5 rows"
        in out
    )
    assert (
        "## Schema (plain_text)\n- text: string\n- label: ClassLabel(0=neg, 1=pos)\n- source: string" in out
    )
    assert (
        "## Sample rows (plain_text/train, 3 of the first 100)" in out
    )  # train preferred over the first split
    assert f"- text: {REVIEW[:150]}... [{len(REVIEW)} chars]" in out
    assert "Row 3:" in out and "Row 4:" not in out
    assert "- plain_text/train: 1 file(s), 23.8 MB" in out
    (rows,) = viewer.find("GET", "^/first-rows$")
    assert (rows.arg("config"), rows.arg("split")) == ("plain_text", "train")
    assert rows.headers["authorization"] == f"Bearer {TOKEN}"


async def test_label_distribution_and_missing_values_of_the_sampled_rows(viewer, hub, sandbox):
    out = await inspect(viewer, hub, sandbox, dataset="stanfordnlp/imdb")
    assert (
        "## Label distributions (first 100 rows of plain_text/train)\n- label: neg 75 (75%), pos 25 (25%)"
        in out
    )
    assert "## Missing values (first 100 rows of plain_text/train)\n- source: 10 null (10%)" in out


async def test_rows_sorted_by_label_are_flagged(viewer, hub, sandbox):
    viewer.datasets["stanfordnlp/imdb"].splits["plain_text"]["train"] = [
        {"text": f"r{n}", "label": 0, "source": "web"} for n in range(100)
    ]
    out = await inspect(viewer, hub, sandbox, dataset="stanfordnlp/imdb")
    assert "- label: neg 100 (100%)  [a single value in these rows: the split may be sorted" in out
    assert "[unseen classes: pos]" in out


async def test_chat_columns_are_analysed(viewer, hub, sandbox):
    out = await inspect(viewer, hub, sandbox, dataset="org/chats", sample_rows=1)
    chat = out.split("## Chat format: messages (20 conversations in the first rows)\n", 1)[1].split("\n\n")[0]
    assert chat.splitlines() == [
        "- roles: assistant 24, user 20, system 4, tool 4",
        "- messages each: min 2, median 2, max 5",
        "- first message mostly user (16/20); last mostly assistant (20/20)",
        "- tool calls: in 4/20 conversations",
        "- message keys: content, role, tool_calls",
    ]
    assert "- messages: list[{role: string, content: string}]" in out
    assert "Label distributions" not in out  # ids and conversations are not labels


async def test_config_and_split_can_be_chosen(viewer, hub, sandbox):
    out = await inspect(
        viewer, hub, sandbox, dataset="stanfordnlp/imdb", split="unsupervised", sample_rows=50
    )
    assert "## Sample rows (plain_text/unsupervised, 5 of the first 5)" in out
    with pytest.raises(ToolError, match="No config 'de'; available: plain_text"):
        await inspect(viewer, hub, sandbox, dataset="stanfordnlp/imdb", config="de")
    with pytest.raises(
        ToolError, match="No split 'dev' in config 'plain_text'; available: test, train, unsupervised"
    ):
        await inspect(viewer, hub, sandbox, dataset="stanfordnlp/imdb", split="dev")


async def test_private_dataset_without_token_says_how_to_authenticate(viewer, hub, sandbox):
    viewer.datasets["org/chats"].private = True
    with pytest.raises(
        ToolError, match=r"private or gated \(HTTP 401\) while inspecting dataset org/chats: set HF_TOKEN"
    ):
        await inspect(viewer, hub, sandbox, token=None, dataset="org/chats")
    assert all("authorization" not in r.headers for r in viewer.requests)
    assert "## Chat format: messages" in await inspect(viewer, hub, sandbox, dataset="org/chats")


async def test_missing_dataset_suggests_close_names(viewer, hub, sandbox):
    with pytest.raises(ToolError, match=r"not found.*Did you mean: stanfordnlp/imdb\?"):
        await inspect(viewer, hub, sandbox, dataset="imdb")
    assert viewer.find("GET", "^/info$") == []  # nothing more is asked once the dataset is unknown


async def test_rate_limits_are_retried(viewer, hub, sandbox):
    viewer.fail("GET", "^/first-rows$", 429, headers={"Retry-After": "0"})
    out = await inspect(viewer, hub, sandbox, dataset="org/chats")
    assert len(viewer.find("GET", "^/first-rows$")) == 2
    assert "Row 1:" in out and "Warnings" not in out


async def test_a_failing_endpoint_becomes_a_warning(viewer, hub, sandbox):
    viewer.fail("GET", "^/parquet$", 500, times=10, headers={"Retry-After": "0"})
    out = await inspect(viewer, hub, sandbox, dataset="org/chats")
    assert len(viewer.find("GET", "^/parquet$")) == 3  # config http.retry_attempts
    assert "## Parquet files" not in out
    assert out.endswith("## Warnings\n- /parquet: HTTP 500: injected 500")


async def test_the_report_is_bounded(viewer, hub, sandbox):
    wide = [{f"col{c}": f"{n} " + "x" * 5000 for c in range(40)} for n in range(100)]
    viewer.add_dataset(
        "org/wide", {"default": {"train": wide}}, features={f"col{c}": value("string") for c in range(40)}
    )
    out = await inspect(viewer, hub, sandbox, dataset="org/wide", sample_rows=99)
    assert len(out) <= 15_200
    assert "Row 10:" in out or "characters omitted" in out
    assert "Row 11:" not in out
