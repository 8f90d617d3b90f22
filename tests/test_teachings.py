"""The teachings: guides read on demand through the `teachings` tool, indexed in the system prompt."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import ml_intern.tools.local.teachings as teachings_tool
from ml_intern.configs.prompt import system_prompt, teachings
from ml_intern.tools.base import ToolEnv
from tests.harness_graph import calls, open_agent, tool_messages

INDEX = re.compile(r"Read teachings\(topic\) before the work it covers: (.*)\.\n")
# What each guide must teach (the original ml-intern's prompt rules, issue 13).
ESSENTIALS = {
    "oom": ["gradient_accumulation_steps", "gradient_checkpointing", "bigger GPU", "LoRA", "max_length"],
    "hardware": ["1-3B", "7-13B", "30B+", "70B+", "a10g-largex2", "a100x8", "30 minutes"],
    "trackio": ['report_to="trackio"', "trackio_space_id", "ml-intern-", "trackio.alert", "TrainerCallback"],
    "preflight": ["`chosen`", "`rejected`", "GRPO", "push_to_hub=True", "hub_model_id", "disable_tqdm=True"],
    "kernels": ["kernels-community/flash-attn2", "attn_implementation", "sdpa"],
    "data_audit": ["hf_inspect_dataset", "duplicates", "imbalance", "missing"],
    "headless": ["text only", "10 minutes", "sweep script"],
}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints.sqlite"


def indexed_topics(prompt: str) -> list[str]:
    """The topic names the system prompt's index lists."""
    [listing] = INDEX.findall(prompt)
    return [entry.split(" (")[0] for entry in listing.split("; ")]


def test_the_prompt_indexes_every_packaged_teaching():
    prompt = system_prompt("project", ["bash", "teachings"])
    assert indexed_topics(prompt) == sorted(teachings()) and set(ESSENTIALS) <= set(teachings())


@pytest.mark.parametrize("topic", sorted(ESSENTIALS))
def test_each_teaching_carries_its_essentials(topic):
    text = teachings()[topic]
    assert [phrase for phrase in ESSENTIALS[topic] if phrase not in text] == []


async def test_the_model_reads_every_indexed_teaching_through_the_tool(tmp_path, db):
    topics = indexed_topics(system_prompt(str(tmp_path), ["teachings"]))
    tools = teachings_tool.make_tools(ToolEnv(workdir=tmp_path, home=tmp_path / "home"))
    answers = [calls(*[("teachings", {"topic": topic}) for topic in topics]), "read them all"]
    async with open_agent(db, answers, tools=tools) as agent:
        await agent.send("train a model")
    results = tool_messages(agent.model.calls[-1])
    assert [m.content for m in results] == [teachings()[topic] for topic in topics]
    assert all(m.status == "success" for m in results)


async def test_an_unknown_topic_answers_with_the_list(tmp_path, db):
    tools = teachings_tool.make_tools(ToolEnv(workdir=tmp_path, home=tmp_path / "home"))
    answers = [calls(("teachings", {"topic": "lora tricks"})), calls(("teachings", {"topic": "OOM"})), "ok"]
    async with open_agent(db, answers, tools=tools) as agent:
        await agent.send("help")
    unknown, known = tool_messages(agent.model.calls[-1])
    assert unknown.status == "error" and "No teaching 'lora tricks'" in unknown.content
    assert all(topic in unknown.content for topic in teachings())
    assert known.content == teachings()["oom"]


def test_headless_runs_get_the_autonomy_rules_and_chat_runs_do_not():
    headless = system_prompt("project", ["bash"], headless=True)
    chat = system_prompt("project", ["bash"])
    assert "never reply with text only" in headless and "never reply with text only" not in chat


def test_the_footer_counts_tools_and_names_those_not_built_in():
    prompt = system_prompt("project", ["bash", "read", "fake__read"])
    footer = prompt.rstrip().splitlines()[-1]
    assert re.fullmatch(
        r"\[Session: \d{4}-\d\d-\d\d, timezone \S+ \(UTC[+-]\d{4}\); 3 tools, incl\. fake__read\]", footer
    ), footer
