"""The pure decisions inside the nodes and routers: resume values, loop detection, the model's view of the
transcript, compaction splits, usage sums, error explanations."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langgraph.graph import END

from ml_intern.configs.schema import as_config
from ml_intern.graph.accounting import call_usage
from ml_intern.graph.loops import call_key, executed_calls, loop_continuation
from ml_intern.graph.messages import NOT_EXECUTED, guard_message, model_view, pending_calls
from ml_intern.graph.routing import (
    recursion_limit,
    route_after_call_model,
    route_after_compact,
    route_after_doom_check,
)
from ml_intern.graph.state import add_usage
from ml_intern.model.errors import explain_model_error
from ml_intern.nodes.approval_interrupt import DENIED, NEVER_AUTO, decide_without_asking, parse_resume
from ml_intern.nodes.compact import estimate_tokens, split_for_summary, threshold


def ai(*call_ids: str, name: str = "bash", args: dict[str, Any] | None = None) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args or {}, "id": i} for i in call_ids])


def result(call_id: str, text: str = "ok") -> ToolMessage:
    return ToolMessage(content=text, tool_call_id=call_id)


# ---- approval ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            {"decisions": {"a": {"approved": True}, "b": {"approved": False, "feedback": "too big"}}},
            {"a": (True, ""), "b": (False, "too big")},
        ),
        (
            {"decisions": {"a": {"approved": True}}},
            {"a": (True, ""), "b": (False, "no decision was given for this call")},
        ),
        ({"approve": True}, {"a": (True, ""), "b": (True, "")}),
        ({"approve": False, "feedback": "use a t4"}, {"a": (False, "use a t4"), "b": (False, "use a t4")}),
        (None, {"a": (False, ""), "b": (False, "")}),
        ("yes", {"a": (False, ""), "b": (False, "")}),
        (
            {"decisions": None},
            {"a": (False, "no decision was given for this call")}
            | {"b": (False, "no decision was given for this call")},
        ),
    ],
    ids=["per-call", "missing-call", "approve-all", "reject-all", "none", "garbage", "null-decisions"],
)
def test_resume_value_becomes_one_decision_per_call(value: Any, expected: dict[str, tuple]) -> None:
    decisions = parse_resume(value, ["a", "b"])
    assert {cid: (d["approved"], d["feedback"]) for cid, d in decisions.items()} == expected


@pytest.mark.parametrize(
    ("mode", "always_ask", "expected"),
    [
        ("ask", False, None),
        ("ask", True, None),
        ("auto", False, {"approved": True}),
        ("auto", True, {"approved": False, "feedback": NEVER_AUTO}),
        ("deny", False, {"approved": False, "feedback": DENIED}),
        ("deny", True, {"approved": False, "feedback": DENIED}),
    ],
)
def test_approval_mode_decides_without_asking_except_ask(mode: str, always_ask: bool, expected: Any) -> None:
    assert decide_without_asking(mode, always_ask) == expected


# ---- doom loop --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([], None),
        ([("A", "1"), ("A", "1")], None),
        ([("A", "1"), ("A", "1"), ("A", "1")], "A"),
        ([("A", "1"), ("A", "2"), ("A", "3")], None),  # polling: results change
        ([("A", "1"), ("B", "1"), ("A", "1"), ("B", "1")], "A"),
        ([("A", "1"), ("B", "1"), ("C", "1"), ("A", "1"), ("B", "1"), ("C", "1")], "A"),
        ([("A", "1"), ("B", "1"), ("A", "1"), ("B", "2")], None),
        ([("X", "1"), ("A", "1"), ("A", "1"), ("A", "1")], "A"),
        ([("A", "1"), ("A", "1"), ("A", "1"), ("B", "1")], None),  # the model already moved on
    ],
    ids=[
        "empty",
        "twice",
        "three",
        "polling",
        "cycle-2",
        "cycle-3",
        "cycle-broken",
        "after-other",
        "moved-on",
    ],
)
def test_loop_continuation(history: list[tuple[str, str]], expected: str | None) -> None:
    assert loop_continuation(history) == expected


def test_call_key_ignores_argument_order() -> None:
    assert call_key("bash", {"a": 1, "b": 2}) == call_key("bash", {"b": 2, "a": 1})
    assert call_key("bash", {"a": 1}) != call_key("read", {"a": 1})


def test_executed_calls_start_at_the_last_user_message_and_skip_blocked_calls() -> None:
    blocked = ToolMessage(
        content="blocked", tool_call_id="c3", additional_kwargs={"ml_intern": {"skipped": 1}}
    )
    messages: list[AnyMessage] = [
        HumanMessage("first"),
        ai("c1"),
        result("c1"),
        HumanMessage("second"),
        ai("c2", args={"x": 1}),
        result("c2", "same"),
        guard_message("doom_loop", "stop looping"),  # a guard does not start a new turn
        ai("c3", args={"x": 1}),
        blocked,
    ]
    history = executed_calls(messages)
    assert [key for key, _ in history] == [call_key("bash", {"x": 1})]


# ---- the transcript the model sees ------------------------------------------------------------------------


def test_model_view_keeps_a_well_formed_transcript_unchanged() -> None:
    messages = [HumanMessage("hi"), ai("c1", "c2"), result("c1"), result("c2"), AIMessage("done")]
    assert model_view(messages) == messages


def test_model_view_answers_calls_left_open_before_a_new_message() -> None:
    messages = [HumanMessage("hi"), ai("c1", "c2"), result("c2"), HumanMessage("never mind")]
    view = model_view(messages)
    assert [(m.type, getattr(m, "tool_call_id", None)) for m in view] == [
        ("human", None),
        ("ai", None),
        ("tool", "c2"),
        ("tool", "c1"),
        ("human", None),
    ]
    assert view[3].content == NOT_EXECUTED and view[3].status == "error"


def test_model_view_answers_calls_open_at_the_end() -> None:
    view = model_view([HumanMessage("hi"), ai("c1")])
    assert [m.type for m in view] == ["human", "ai", "tool"] and view[-1].tool_call_id == "c1"


def test_pending_calls_are_the_unanswered_calls_of_the_last_reply() -> None:
    messages = [HumanMessage("hi"), ai("c1", "c2", "c3"), result("c2")]
    assert [c["id"] for c in pending_calls(messages)] == ["c1", "c3"]
    assert pending_calls([*messages, HumanMessage("new")]) == []


# ---- compaction -------------------------------------------------------------------------------------------


def long_session() -> list[AnyMessage]:
    """A session with tool results of varied sizes, so that many cut points are possible."""
    messages: list[AnyMessage] = [HumanMessage("the task")]
    for i in range(12):
        messages += [ai(f"c{i}", args={"cmd": "y" * (37 * i)}), result(f"c{i}", "x" * (150 * (i % 5)))]
        if i % 4 == 3:
            messages.append(AIMessage(f"progress note {i}"))
    return [*messages, HumanMessage("next step")]


@pytest.mark.parametrize("keep_recent", range(0, 1_700, 37))
def test_compaction_split_keeps_the_first_message_and_no_orphan_result(keep_recent: int) -> None:
    messages = long_session()
    tokens = [estimate_tokens([m]) for m in messages]
    span = split_for_summary(messages, keep_recent)
    if span is None:
        assert sum(tokens[3:]) <= keep_recent  # the recent tail covers (almost) everything: nothing to cut
        return
    start, end = span
    assert start == 1  # the first user message stays
    assert end == len(messages) or not isinstance(messages[end], ToolMessage)
    assert sum(tokens[end:]) <= keep_recent


def test_compaction_split_is_none_when_there_is_nothing_to_cut() -> None:
    assert split_for_summary([HumanMessage("only")], 100) is None
    assert split_for_summary([AIMessage("no user turn")], 100) is None


@pytest.mark.parametrize(
    ("config", "window", "expected"),
    [
        ({}, None, 170_000),
        ({"compaction": {"threshold_tokens": 5_000}}, None, 5_000),
        ({}, 100_000, 90_000),
        ({"compaction": {"threshold_tokens": 50_000}}, 100_000, 50_000),
        ({"compaction": {"window_fraction": 0.5}}, 100_000, 50_000),
    ],
)
def test_compaction_threshold_is_the_smaller_of_config_and_window(config, window, expected) -> None:
    assert threshold(as_config(config), window) == expected


# ---- usage ------------------------------------------------------------------------------------------------


def test_call_usage_reads_tokens_cache_and_cost() -> None:
    reply = AIMessage(
        content="x",
        usage_metadata={
            "input_tokens": 120,
            "output_tokens": 7,
            "total_tokens": 127,
            "input_token_details": {"cache_read": 100},
        },
        response_metadata={"response_cost": 0.002},
    )
    assert call_usage(reply) == {
        "input_tokens": 120,
        "output_tokens": 7,
        "cached_tokens": 100,
        "calls": 1,
        "cost_usd": 0.002,
    }


def test_usage_totals_add_up_and_an_unknown_cost_stays_unknown() -> None:
    total = add_usage({}, {"input_tokens": 10, "calls": 1, "cost_usd": 0.5})
    total = add_usage(total, {"input_tokens": 5, "calls": 1, "cost_usd": 0.25})
    assert total == {"input_tokens": 15, "calls": 2, "cost_usd": 0.75}
    unknown = add_usage(total, {"input_tokens": 1, "cost_usd": None})
    assert unknown["cost_usd"] is None
    assert add_usage(unknown, {"cost_usd": 1.0})["cost_usd"] is None


# ---- routing ----------------------------------------------------------------------------------------------


async def test_routers_end_the_turn_once_a_stop_reason_is_set() -> None:
    stopped: dict[str, Any] = {"messages": [ai("c1")], "stop_reason": "max_iterations"}
    assert route_after_compact(stopped) == END
    assert route_after_call_model(stopped) == END
    assert await route_after_doom_check(stopped) == END


async def test_router_after_doom_check_lets_the_model_read_a_guard() -> None:
    guarded = [ai("c1"), result("c1"), guard_message("doom_loop", "stop")]
    assert await route_after_doom_check({"messages": guarded, "stop_reason": None}) == "compact"
    assert route_after_compact({"messages": guarded}) == "call_model"


def test_recursion_limit_leaves_room_for_every_allowed_model_call() -> None:
    assert recursion_limit(1) >= 5 + 1
    assert recursion_limit(300) >= 5 * 300


# ---- model errors -----------------------------------------------------------------------------------------


def provider_error(name: str, message: str, status: int | None = None) -> Exception:
    error = type(name, (Exception,), {})(message)
    error.status_code = status
    return error


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        (provider_error("AuthenticationError", "bad key"), 2, "rejected the credentials"),
        (provider_error("BadRequestError", "denied", 403), 2, "denied"),
        (provider_error("NotFoundError", "no such model", 404), 2, "not found"),
        (provider_error("APIConnectionError", "Connection refused"), 1, "cannot reach"),
        (provider_error("InternalServerError", "boom", 502), 1, "cannot reach"),
        (provider_error("RateLimitError", "slow down", 429), 1, "rate limiting"),
        (provider_error("ValueError", "odd"), 1, "the model call failed"),
    ],
)
def test_model_errors_get_one_line_and_an_exit_code(error: Exception, code: int, words: str) -> None:
    line, exit_code = explain_model_error(error, "vllm/m")
    assert exit_code == code and words in line and "vllm/m" in line and "\n" not in line


def test_model_error_lines_hide_secrets() -> None:
    error = provider_error("AuthenticationError", "Incorrect API key provided: sk-abcdefghijklmnop")
    line, _ = explain_model_error(error, "openai/gpt-5")
    assert "sk-abcdefghijklmnop" not in line and "[redacted]" in line
