"""What a command line asked for, in one frozen object (cli.py builds it, the Session reads it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunOptions:
    """The options of one `ml-intern` invocation."""

    model: str | None = None  # --model; None: the thread's model, else config and credentials
    max_iterations: int | None = None  # --max-iterations; None: the config's
    no_stream: bool = False  # --no-stream
    output_format: str = "text"  # --output-format: text | json | stream-json (headless only)
    approval: str | None = None  # --approval ask|auto|deny; None: config, else ask (chat) or auto
    tools: tuple[str, ...] | None = None  # --tools: offer only these tool names
    max_cost: float | None = None  # --max-cost (USD per turn)
    max_tokens: int | None = None  # --max-tokens (per turn)
    thread: str | None = None  # None: a new thread; "": the most recent; else an id or a unique prefix
    prompt: str | None = None  # the message to send headless ("-": read stdin); None: the chat
    continue_turn: bool = False  # `resume --continue`: finish a turn that was cut off, headless
    verbose: bool = False  # -v: library logs on stderr too (--debug: at DEBUG level, with tracebacks)
    sandbox_tools: bool = False  # --sandbox-tools: the tool runtime "sandbox" (else the thread's, or config)

    @property
    def headless(self) -> bool:
        """One turn, then exit (a prompt, or `--continue`); otherwise the chat."""
        return self.prompt is not None or self.continue_turn

    def stream(self) -> bool:
        """Whether to stream model output (unless --no-stream), headless text and json runs included.

        litellm's streaming path costs ~15 ms a call, but only a stream lets a silent server be noticed in
        `stream_idle_timeout` seconds rather than `request_timeout` (ten minutes, per retry)."""
        return not self.no_stream
