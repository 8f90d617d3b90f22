"""The teachings: guides read on demand through the `teachings` tool, indexed in the system prompt."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import ml_intern.tools.local.teachings as teachings_tool
from ml_intern.configs.prompt import system_prompt, teachings
from ml_intern.tools.base import ToolEnv
from ml_intern.tools.jobs.pricing import FLAVORS, HOURLY_USD
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


GPU_GB = {"t4": 16, "a10g": 24, "l4": 24, "l40s": 48, "a100": 80, "h200": 141, "rtx-pro-6000": 96}
FLAVOR = re.compile(r"(t4|a10g|l40s|l4|a100|h200|rtx-pro-6000)(?:-small|-medium|-large)?(?:x(\d+))?")
HEADROOM = 1.2  # the guide's "leave 20-40% headroom", at its lowest


def sizing_cells() -> list[tuple[float, float, str]]:
    """(billions of parameters, bytes per parameter, entry) per flavor in the hardware guide's table."""
    rows = [
        line.split("|")[1:4] for line in teachings()["hardware"].splitlines() if re.match(r"\| <? ?\d", line)
    ]
    cells = []
    for size, lora, full in rows:
        top = re.findall(r"\d+", size)[-1 if "-" in size else 0]  # the top of a range, else its bound
        for column, per_param in ((lora, 2.0), (full, 16.0)):
            for entry in re.split(r",\s*(?![^(]*\))", column.strip()):
                capped = re.search(r"up to ~(\d+)B", entry)
                each = 0.7 if "QLoRA" in entry else per_param
                cells.append((float(capped[1] if capped else top), each, entry))
    return cells


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


@pytest.mark.parametrize(
    ("offered", "absent"),
    [
        (["bash", "read"], ["teachings", "plan_tool"]),
        (["bash", "teachings"], ["plan_tool"]),
        (["bash", "plan_tool"], ["teachings"]),
    ],
)
def test_the_prompt_names_only_the_tools_it_offers(offered, absent):
    prompt = system_prompt("project", offered)
    assert [name for name in ["teachings", "plan_tool"] if name in prompt] == [
        name for name in ["teachings", "plan_tool"] if name not in absent
    ]
    assert ("# Teachings" in prompt) == ("teachings" in offered)
    assert "\n\n\n" not in prompt and prompt.rstrip().endswith("2 tools]")


@pytest.mark.parametrize("topic", sorted(ESSENTIALS))
def test_each_teaching_carries_its_essentials(topic):
    text = teachings()[topic]
    assert [phrase for phrase in ESSENTIALS[topic] if phrase not in text] == []


def test_every_flavor_in_the_sizing_table_fits_the_guides_own_rule():
    cells = sizing_cells()
    assert len(cells) >= 20
    too_small = []
    for billions, per_param, entry in cells:
        if "offload" in entry:  # beyond GPU memory by design; the guide says to ask first
            continue
        flavor = entry.split()[0]
        gpu, count = FLAVOR.fullmatch(flavor).groups()
        needed, has = billions * per_param * HEADROOM, GPU_GB[gpu] * int(count or 1)
        assert flavor in FLAVORS
        too_small += [f"{entry}: {needed:.0f} GB > {has} GB"] if needed > has else []
    assert too_small == []


def test_the_hardware_guides_gpu_memory_and_prices_are_the_real_ones():
    text = " ".join(teachings()["hardware"].split())
    listed = dict(re.findall(r"\b([a-z0-9-]+) (\d+) GB", text.split("GPUs per flavor:")[1].split("`xN`")[0]))
    assert {gpu: int(gb) for gpu, gb in listed.items()} == GPU_GB
    prices = re.findall(r"\b([a-z0-9-]+) (\d+(?:\.\d+)?)\b", text.split("Rough prices")[1].split("Prefer")[0])
    assert len(prices) >= 8 and {flavor: float(usd) for flavor, usd in prices} == {
        flavor: HOURLY_USD[flavor] for flavor, _ in prices
    }


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
