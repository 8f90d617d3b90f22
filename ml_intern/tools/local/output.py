"""A command's output, bounded: head and tail kept; past the limit the full text goes to a spill file.

Text is kept only with terminal escapes stripped and secrets redacted after joining chunk edges: a token cut
by a pipe read or inside a long line is redacted whole."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import IO

from ml_intern.secrets import StreamRedactor, redact
from ml_intern.tools.base import MAX_RESULT_CHARS

HEAD_CHARS = MAX_RESULT_CHARS // 4  # tail-biased: errors and summaries come last
TAIL_CHARS = MAX_RESULT_CHARS - HEAD_CHARS
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]|\x1b\].*?\x07")
MAX_ESCAPE = 256  # an escape sequence still unfinished this far from the end is text, not an escape


def clean(text: str) -> str:
    """One whole piece of output as it may be shown: terminal escapes stripped, secrets redacted."""
    return redact(ANSI_ESCAPE.sub("", text))


class CleanText:
    """Turns output read in arbitrary chunks into text to keep: terminal escapes stripped (an unfinished one
    waits for its end) and secrets redacted after joining chunk edges (StreamRedactor holds back wherever a
    secret may still be completing)."""

    def __init__(self) -> None:
        self.escape = ""  # the start of an escape sequence cut by the last chunk
        self.redactor = StreamRedactor()

    @property
    def held_chars(self) -> int:
        """Characters held back until more output arrives."""
        return len(self.escape) + len(self.redactor.pending)

    def feed(self, text: str) -> str:
        """Cleaned text that is safe to release now (maybe empty)."""
        text = ANSI_ESCAPE.sub("", self.escape + text)
        start = text.find("\x1b", max(0, len(text) - MAX_ESCAPE))
        text, self.escape = (text[:start], text[start:]) if start >= 0 else (text, "")
        return self.redactor.feed(text)

    def flush(self) -> str:
        """Everything held, cleaned (the output has ended)."""
        text, self.escape = self.escape, ""
        return self.redactor.feed(text) + self.redactor.flush()


class OutputCollector:
    """Keeps the head and tail of a command's output; past the limit the full text goes to a spill file.

    The reader thread feeds it while the event loop may detach or finish it: a lock keeps them apart."""

    def __init__(self, spill_dir: Path) -> None:
        self.spill_dir = spill_dir
        self.lock = threading.Lock()
        self.cleaner = CleanText()
        self.head: list[str] = []  # the whole output, until it passes the limit
        self.head_text = ""  # past the limit: its first HEAD_CHARS
        self.tail: deque[str] = deque()
        self.tail_chars = 0
        self.total_chars = 0
        self.spill: IO[str] | _Discard | None = None
        self.spill_path: Path | None = None
        self.detached = False  # the call has returned: later output is drained, not kept
        self.spill_error: str | None = None  # why the full output could not be saved

    @property
    def held_chars(self) -> int:
        """Characters kept in memory (bounded whatever the output's size)."""
        return self.cleaner.held_chars + sum(map(len, self.head)) + len(self.head_text) + self.tail_chars

    def feed(self, text: str) -> str:
        """Take raw decoded output (from the reader thread); return the clean text released so far."""
        with self.lock:
            if self.detached:
                return ""
            released = self.cleaner.feed(text)
            self._add(released)
            return released

    def end_of_output(self) -> str:
        """The output has ended: keep what was held back, and return it."""
        with self.lock:
            if self.detached:
                return ""
            released = self.cleaner.flush()
            self._add(released)
            return released

    def add(self, text: str) -> None:
        """Record a note of our own (already clean)."""
        with self.lock:
            if not self.detached:
                self._add(self.cleaner.flush() + text)

    def detach(self, note: str = "") -> None:
        """Keep what has arrived (and `note`); drop later output, which the reader drains."""
        with self.lock:
            if not self.detached:
                self._add(self.cleaner.flush() + note)
            self.detached = True

    def _add(self, text: str) -> None:
        if not text:
            return
        self.total_chars += len(text)
        if self.spill is None:
            self.head.append(text)
            if self.total_chars > MAX_RESULT_CHARS:
                self._start_spill()  # moves the head to the spill file and the tail
            return
        self._spill(text)
        self._keep_tail(text)

    def _keep_tail(self, text: str) -> None:
        self.tail.append(text)
        self.tail_chars += len(text)
        while self.tail_chars > TAIL_CHARS:
            excess = self.tail_chars - TAIL_CHARS
            if len(self.tail[0]) <= excess:
                self.tail_chars -= len(self.tail.popleft())
            else:
                self.tail[0], self.tail_chars = self.tail[0][excess:], TAIL_CHARS

    def _spill(self, text: str) -> None:
        """Save to the spill file; a full disk ends the saving, never the command or the event loop."""
        try:
            self.spill.write(text)
        except OSError as exc:
            self.spill_error = exc.strerror or str(exc)
            self.spill = _Discard()

    def _start_spill(self) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.spill_path = self.spill_dir / f"bash-{stamp}-{uuid.uuid4().hex[:8]}.txt"
        try:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            self.spill = self.spill_path.open("w", encoding="utf-8")
        except OSError as exc:
            self.spill_error, self.spill = exc.strerror or str(exc), _Discard()
        kept, self.head = "".join(self.head), []
        self.head_text = kept[:HEAD_CHARS]
        self._spill(kept)
        self._keep_tail(kept)

    def close(self) -> None:
        """Close the spill file, if any."""
        with self.lock:
            if self.spill is not None:
                self.spill.close()

    def finish(self) -> str:
        """Keep what was held back, close the spill file and return the bounded text."""
        self.add("")
        self.close()
        if self.spill_path is None:
            return "".join(self.head)
        tail = "".join(self.tail)
        omitted = self.total_chars - len(self.head_text) - len(tail)
        saved = (
            f"not saved: {self.spill_error}"
            if self.spill_error
            else f"Full output saved to {self.spill_path}; use the read tool with offset/limit to inspect it."
        )
        note = f"{omitted:,} of {self.total_chars:,} characters omitted. {saved}"
        return f"{self.head_text}\n\n... [{note}] ...\n\n{tail}"


class _Discard:
    """Stands in for a spill file that could not be written."""

    def write(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass
