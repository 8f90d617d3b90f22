"""The sandbox server: runs in the Space (and, in the tests, on this machine). Standard library only, one file
(it is uploaded as is; importing it has no side effects). The protocol (client.py speaks it):

Start: `python server.py [--host H] [--port P] [--root DIR]`; env SANDBOX_API_TOKEN (required for every call
but health), SANDBOX_ROOT (default /app), PORT (default 7860), SANDBOX_SPILL_DIR (/tmp/ml-intern-spill).
Once bound it prints one line `listening on http://HOST:PORT` to stdout (with `--port 0`, the port chosen).
SIGTERM stops it and the process groups it started.

Auth: header `X-Sandbox-Authorization: Bearer <token>`, compared in constant time; missing or wrong → 401
{"error"}; no token configured → 503 {"error"}. `GET /api/health` is open: 200 {"ok": true, "version": 1}.

Every other call is `POST /api/<op>` with a JSON object body (Content-Length required, else 411; ≤ 16 MB, else
413); bad JSON / arguments → 400 {"error": "<one line>"}; an operation's own failure (file not found, old_str
not unique) → 400 {"error"}; an unknown op → 404 {"error"}; a bug of ours → 500 {"error"} (the traceback goes
to the server's stderr, never into a reply). Every error is {"error": "<one line>"}. Unknown keys are ignored.
Paths: relative ones resolve against the root; `/app/...` maps onto the root when the root is elsewhere;
other absolute paths are used as given (the sandbox is its own machine).

- bash   {"command", "timeout": s (≤ 1200), "work_dir": "", "id": ""} → {"output", "exit_code" (None when
          killed), "timed_out", "truncated", "spill" (path in the sandbox of the whole output, or None)}. Own
          process group; at the timeout the group gets SIGTERM, then SIGKILL 2 s later. stdout+stderr,
          ≤ 25,000 chars (head and tail; the whole output spilled).
          Details: timeout missing, null or 0 → 240, else clamped to 1..1200; work_dir resolves like a path
          (it must be a directory); "id" (≤ 100 chars, the client's for this call) names the call for kill:
          a call whose id was killed already is not started (409 {"error"}). The command runs under
          /bin/bash -c with stdin /dev/null and the server's environment minus SANDBOX_API_TOKEN. When
          background processes still hold the output open a second after bash exits, the group is stopped
          (SIGTERM, SIGKILL 2 s later) and a note in the output says so; a background job whose output goes
          to a file keeps running (/api/kill stops it). A truncated output is its head, the line
          `[… N characters omitted; whole output: <spill>]`, and its tail; the spill file (mode 0600) holds
          the whole output's bytes. exit_code is bash's (128 + n when a signal n ended it).
- read   {"path", "offset": 1, "limit": 2000} → {"content" (numbered lines "%6d\t%s", long lines cut at 2,000
          chars), "total_lines"}; with "raw": true → {"content": the whole text (≤ 1 MB, else 400)}
          Details: also "last_line" (the last line number shown; 0 for an empty file); the numbered content
          stops at about 25,000 chars (continue from last_line + 1); an offset past the end → 400; a binary
          file (a NUL byte in its first 8 KB) → 400; raw content must be UTF-8 (else 400) and also has
          "total_lines".
- write  {"path", "content"} → {"message"} (parents created; UTF-8; an existing file is replaced atomically
          and keeps its mode)
- edit   {"path", "old_str", "new_str", "replace_all": false,
          "mode": "replace"|"append_after"|"prepend_before"} → {"message", "snippet"}
          Details: exact matching; old_str must occur once unless replace_all ("old_str not found in …" /
          "old_str found N times in …" → 400); CRLF files are matched as LF and keep CRLF; the snippet is the
          numbered lines around the first edit; files over 32 MB → 400 (use bash).
- exists {"path"} → {"exists", "is_dir", "size"} (size None when missing)
- kill   {"id": ""} → {"killed": n}: with an id, the process group of the bash call with that id (and
          whatever it left running in the background), and that id is remembered (a bash call with it that
          arrives later is not started); without one, every process group the server started and still runs.
"""

from __future__ import annotations

import argparse
import codecs
import hmac
import json
import os
import secrets
import select
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import urlsplit

VERSION = 1
TOKEN_ENV = "SANDBOX_API_TOKEN"
AUTH_HEADER = "X-Sandbox-Authorization"
DEFAULT_SPILL_DIR = "/tmp/ml-intern-spill"
APP = PurePosixPath("/app")  # where the client's paths live: the root in the Space
MAX_BODY = 16 * 1024 * 1024
DRAIN_LIMIT = 4 * MAX_BODY  # a refused body up to this size is read and dropped (no reset for the client)
SOCKET_TIMEOUT = 60  # seconds a client may take to send a request

DEFAULT_TIMEOUT, MAX_TIMEOUT = 240, 1200
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
DRAIN_SECONDS = 1.0  # how long output may trail after bash exits (then background holders are stopped)
READ_CHUNK = 65_536
MAX_OUTPUT_CHARS = 25_000
HEAD_CHARS = 5_000  # tail-biased: errors and summaries come last
MAX_ID_CHARS = 100
MAX_KILLED_IDS = 10_000  # killed call ids remembered (a kill may arrive before its call)

DEFAULT_READ_LINES = 2000
MAX_LINE_CHARS = 2000
MAX_READ_CHARS = 25_000
LINE_PIECE = 1 << 20  # a long line is read in pieces of this many bytes
SNIFF_BYTES = 8192
MAX_RAW_BYTES = 1 << 20
MAX_EDIT_BYTES = 32 << 20
SNIPPET_CONTEXT, SNIPPET_MAX_LINES = 2, 30
EDIT_MODES = ("replace", "append_after", "prepend_before")


class ApiError(Exception):
    """A failure told to the client as {"error": message} with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, one_line(message)


def one_line(text: str) -> str:
    """`text` on one line, bounded."""
    return " ".join(str(text).split("\n")).replace("\r", " ")[:1000]


# Arguments and paths


REQUIRED = object()
KINDS = {str: "a string", int: "an integer", bool: "true or false"}


def take(body: dict[str, Any], name: str, kind: type, default: Any = REQUIRED) -> Any:
    """The argument `name` of type `kind` (null means the default), or a 400."""
    value = body.get(name)
    if value is None:
        if default is REQUIRED:
            raise ApiError(400, f"missing argument: {name}")
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ApiError(400, f"{name} must be {KINDS[kind]}")
    return value


def resolve(root: Path, path: str) -> Path:
    """Where `path` points: relative to the root; `/app/...` onto the root; other absolute paths as given."""
    if not path or "\0" in path:
        raise ApiError(400, "path is empty" if not path else "path contains a NUL character")
    pure = PurePosixPath(os.path.expanduser(path))
    if not pure.is_absolute():
        return root / pure
    if root != Path(APP) and (pure == APP or APP in pure.parents):
        return root / pure.relative_to(APP)
    return Path(pure)


# Commands: output and process groups


class BoundedOutput:
    """A command's output: all of it while short; past MAX_OUTPUT_CHARS only its head and tail in memory and
    the whole of it (raw bytes) in a spill file. Fed by one reader thread; finished after it has stopped."""

    def __init__(self, spill_dir: Path) -> None:
        self.spill_dir = spill_dir
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.raw = bytearray()  # the bytes so far, until the spill starts
        self.text: list[str] = []  # the text so far, until the spill starts
        self.head = ""
        self.tail: deque[str] = deque()
        self.tail_chars = self.total_chars = 0
        self.spilling = False
        self.spill: BinaryIO | None = None
        self.spill_path: Path | None = None
        self.spill_error = ""

    def feed(self, chunk: bytes) -> None:
        """Take raw output."""
        if self.spilling:
            self._save(chunk)
        else:
            self.raw += chunk
        self._add(self.decoder.decode(chunk))

    def note(self, text: str) -> None:
        """Add a note of ours at the end (not saved in the spill file)."""
        self._add(self.decoder.decode(b"", final=True) + text)

    def finish(self) -> tuple[str, bool, str | None]:
        """(output ≤ MAX_OUTPUT_CHARS, truncated, spill path); closes the spill file."""
        self.note("")
        if self.spill is not None:
            self.spill.close()
        if not self.spilling:
            return "".join(self.text), False, None
        where = f"whole output: {self.spill_path}" if self.spill_path else f"not saved: {self.spill_error}"
        longest = f"\n[… {self.total_chars:,} characters omitted; {where}]\n"  # the count can only be smaller
        budget = MAX_OUTPUT_CHARS - len(self.head) - len(longest)
        tail = "".join(self.tail)[-budget:] if budget > 0 else ""
        omitted = self.total_chars - len(self.head) - len(tail)
        text = f"{self.head}\n[… {omitted:,} characters omitted; {where}]\n{tail}"
        return text[:MAX_OUTPUT_CHARS], True, str(self.spill_path) if self.spill_path else None

    def _add(self, text: str) -> None:
        if not text:
            return
        self.total_chars += len(text)
        if self.spilling:
            self._keep_tail(text)
            return
        self.text.append(text)
        if self.total_chars > MAX_OUTPUT_CHARS:
            self._start_spill()

    def _start_spill(self) -> None:
        kept, self.text = "".join(self.text), []
        self.head, self.spilling = kept[:HEAD_CHARS], True
        self._keep_tail(kept[HEAD_CHARS:])
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.spill_dir / f"bash-{stamp}-{secrets.token_hex(4)}.txt"
        try:
            self.spill_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            self.spill, self.spill_path = os.fdopen(os.open(path, flags, 0o600), "wb"), path
        except OSError as error:
            self.spill_error = error.strerror or str(error)
        raw, self.raw = bytes(self.raw), bytearray()
        self._save(raw)

    def _save(self, chunk: bytes) -> None:
        """Append to the spill file; a full disk ends the saving, never the command."""
        if self.spill is None:
            return
        try:
            self.spill.write(chunk)
        except OSError as error:
            self.spill_error = error.strerror or str(error)
            self.spill.close()
            self.spill, self.spill_path = None, None

    def _keep_tail(self, text: str) -> None:
        limit = MAX_OUTPUT_CHARS - HEAD_CHARS
        self.tail.append(text)
        self.tail_chars += len(text)
        while self.tail_chars > limit:
            excess = self.tail_chars - limit
            if len(self.tail[0]) <= excess:
                self.tail_chars -= len(self.tail.popleft())
            else:
                self.tail[0], self.tail_chars = self.tail[0][excess:], limit


def signal_group(pgid: int, signum: int) -> bool:
    """Send `signum` to the group; False when it no longer exists."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def wait_gone(pgid: int, seconds: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    """Wait until the group has no process left (reaping our own child); True if it is gone."""
    deadline = time.monotonic() + seconds
    while True:
        if proc is not None:
            proc.poll()  # our bash, once dead, must be reaped or it keeps the group alive
        if not signal_group(pgid, 0):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def stop_group(pgid: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM the group, SIGKILL it KILL_GRACE seconds later if anything is left."""
    if signal_group(pgid, signal.SIGTERM) and not wait_gone(pgid, KILL_GRACE, proc):
        signal_group(pgid, signal.SIGKILL)
        wait_gone(pgid, 1.0, proc)


class ProcessGroups:
    """The process groups the server started, by the id of the bash call that started each, for /api/kill."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pgids: dict[int, str] = {}  # pgid → the id of the call that started it ("" when it had none)
        self.killed: dict[str, None] = {}  # ids already killed (the oldest forgotten past MAX_KILLED_IDS)

    def check(self, call_id: str) -> None:
        """A 409 when the call `call_id` was killed before it started."""
        with self.lock:
            if call_id and call_id in self.killed:
                raise ApiError(409, f"bash call {call_id} was cancelled before it started")

    def add(self, pgid: int, call_id: str) -> bool:
        """Keep the group; False when its call was killed meanwhile (the caller stops it)."""
        with self.lock:
            self.pgids = {p: i for p, i in self.pgids.items() if signal_group(p, 0)} | {pgid: call_id}
            return not (call_id and call_id in self.killed)

    def forget_if_gone(self, pgid: int) -> None:
        """Keep a group only while it runs (a background job stays killable)."""
        if not signal_group(pgid, 0):
            with self.lock:
                self.pgids.pop(pgid, None)

    def kill(self, call_id: str = "") -> int:
        """Stop the groups of the call `call_id` (every group when ""); how many were running."""
        with self.lock:
            if call_id:
                self.killed[call_id] = None
                while len(self.killed) > MAX_KILLED_IDS:
                    del self.killed[next(iter(self.killed))]
            chosen = [p for p, i in self.pgids.items() if not call_id or i == call_id]
            live = [pgid for pgid in chosen if signal_group(pgid, signal.SIGTERM)]
        deadline = time.monotonic() + KILL_GRACE
        for pgid in live:
            if not wait_gone(pgid, max(deadline - time.monotonic(), 0)):
                signal_group(pgid, signal.SIGKILL)
        with self.lock:
            self.pgids = {p: i for p, i in self.pgids.items() if signal_group(p, 0)}
        return len(live)


def pump(fd: int, output: BoundedOutput, stop: threading.Event) -> None:
    """Read the command's output until EOF, or until `stop` (something outside our group holds the pipe)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    try:
        while not stop.is_set():
            if not poller.poll(200):
                continue
            chunk = os.read(fd, READ_CHUNK)
            if not chunk:
                return
            output.feed(chunk)
    except OSError as error:
        print(f"sandbox server: reading a command's output failed: {error}", file=sys.stderr)


def timeout_of(body: dict[str, Any]) -> float:
    """The command's timeout in seconds: missing, null or 0 → the default; else clamped to 1..MAX_TIMEOUT."""
    value = body.get("timeout")
    if value is None or value == 0:
        return DEFAULT_TIMEOUT
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
        raise ApiError(400, "timeout must be a number of seconds")
    return min(max(float(value), 1.0), MAX_TIMEOUT)


def call_id_of(body: dict[str, Any]) -> str:
    """The bash call's id ("" when none): a short string."""
    call_id = take(body, "id", str, "")
    if len(call_id) > MAX_ID_CHARS:
        raise ApiError(400, f"id is longer than {MAX_ID_CHARS} characters")
    return call_id


def run_bash(server: SandboxServer, body: dict[str, Any]) -> dict[str, Any]:
    """Run a command in its own process group, bounded in time and output."""
    command, timeout, call_id = take(body, "command", str), timeout_of(body), call_id_of(body)
    cwd = resolve(server.root, take(body, "work_dir", str, "")) if body.get("work_dir") else server.root
    if not cwd.is_dir():
        raise ApiError(400, f"work_dir {cwd} is not a directory; create it first (mkdir -p).")
    server.groups.check(call_id)
    environment = {name: value for name, value in os.environ.items() if name != TOKEN_ENV}
    try:
        proc = subprocess.Popen(
            ["/bin/bash", "-c", command],
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except (OSError, ValueError) as error:  # ValueError: a NUL character in the command
        raise ApiError(400, f"could not start bash: {error}") from None
    if not server.groups.add(proc.pid, call_id):  # killed while it was starting
        stop_group(proc.pid, proc)
    output = BoundedOutput(server.spill_dir)
    try:
        timed_out, held_open = watch(proc, output, timeout)
    finally:
        if proc.poll() is None:
            stop_group(proc.pid, proc)
        server.groups.forget_if_gone(proc.pid)
    if held_open:
        output.note(
            "\n[background processes kept the output open; they were stopped. Send a background job's output"
            " to a file to keep it running: nohup CMD > log 2>&1 &]\n"
        )
    text, truncated, spill = output.finish()
    code = proc.returncode
    exit_code = None if timed_out else (128 - code if code < 0 else code)
    return {
        "output": text,
        "exit_code": exit_code,
        "timed_out": timed_out,
        "truncated": truncated,
        "spill": spill,
    }


def watch(proc: subprocess.Popen[bytes], output: BoundedOutput, timeout: float) -> tuple[bool, bool]:
    """Collect the output until bash exits and the pipe closes, stopping the group at the timeout or when
    background processes hold the pipe; (timed_out, held_open)."""
    assert proc.stdout is not None
    stop = threading.Event()
    reader = threading.Thread(target=pump, args=(proc.stdout.fileno(), output, stop), daemon=True)
    reader.start()
    timed_out = held_open = False
    try:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            stop_group(proc.pid, proc)
        reader.join(DRAIN_SECONDS)
        if reader.is_alive() and not timed_out:
            held_open = True
            stop_group(proc.pid, proc)
            reader.join(DRAIN_SECONDS)
    finally:
        stop.set()  # whatever still holds the pipe is outside our group: stop reading
        reader.join()
        proc.stdout.close()
    return timed_out, held_open


def kill(server: SandboxServer, body: dict[str, Any]) -> dict[str, Any]:
    """Stop the process groups of one bash call (by its id), or every one the server started."""
    return {"killed": server.groups.kill(call_id_of(body))}


# Files


def require_file(target: Path, path: str) -> None:
    if not target.exists():
        raise ApiError(400, f"File not found: {path} (resolved to {target}). Check the path with bash `ls`.")
    if target.is_dir():
        raise ApiError(400, f"{path} is a directory; list it with bash `ls` instead.")


def number_line(number: int, line: str, max_chars: int = MAX_LINE_CHARS, more: int = 0) -> str:
    """Format one line like `cat -n`, cutting a long one (`more`: characters not even read)."""
    extra = max(len(line) - max_chars, 0) + more
    if extra:
        line = f"{line[:max_chars]}... [{extra} more characters]"
    return f"{number:>6}\t{line}"


def lines_of(handle: BinaryIO, wanted: Callable[[int], bool]) -> Iterator[tuple[int, str, int]]:
    """Yield (number, text, characters past the text) per line; only `wanted` lines are decoded."""
    number = 0
    while piece := handle.readline(LINE_PIECE):
        number += 1
        if wanted(number):
            yield number, *line_from(handle, piece)
            continue
        while not piece.endswith(b"\n") and (piece := handle.readline(LINE_PIECE)):
            pass
        yield number, "", 0


def line_from(handle: BinaryIO, piece: bytes) -> tuple[str, int]:
    """The line that starts with `piece`, without its end: its first LINE_PIECE bytes decoded, and how many
    characters follow them (so a line of any length holds little memory)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    text, more, pieces = "", 0, 0
    while True:
        ended = not piece or piece.endswith(b"\n")  # an empty piece: the file ends without a line end
        data = piece.removesuffix(b"\n").removesuffix(b"\r") if piece.endswith(b"\n") else piece
        part = decoder.decode(data, final=ended)
        pieces += 1 if piece else 0
        if pieces <= 1:
            text += part
        else:
            more += len(part)
        if ended:
            return text, more
        piece = handle.readline(LINE_PIECE)


def sniff_binary(target: Path, path: str) -> None:
    with target.open("rb") as raw:
        if b"\0" in raw.read(SNIFF_BYTES):
            raise ApiError(400, f"{path} is a binary file; inspect it with bash (e.g. `file`, `xxd | head`).")


def read(server: SandboxServer, body: dict[str, Any]) -> dict[str, Any]:
    """Numbered lines from `offset`, or with raw the whole text."""
    path = take(body, "path", str)
    target = resolve(server.root, path)
    require_file(target, path)
    sniff_binary(target, path)
    if take(body, "raw", bool, False):
        return read_raw(target, path)
    offset = max(take(body, "offset", int, 1), 1)
    limit = max(take(body, "limit", int, DEFAULT_READ_LINES), 1)
    shown: list[str] = []
    size = total = 0

    def wanted(number: int) -> bool:
        return number >= offset and len(shown) < limit and size < MAX_READ_CHARS

    with target.open("rb") as handle:
        for total, text, more in lines_of(handle, wanted):
            if wanted(total):
                shown.append(number_line(total, text, more=more))
                size += len(shown[-1]) + 1
    if total and not shown:
        raise ApiError(400, f"offset {offset} is past the end of {path}, which has {total} lines.")
    last = offset + len(shown) - 1 if shown else 0
    return {"content": "\n".join(shown), "total_lines": total, "last_line": last}


def read_raw(target: Path, path: str) -> dict[str, Any]:
    size = target.stat().st_size
    if size > MAX_RAW_BYTES:
        raise ApiError(
            400, f"{path} is {size:,} bytes; a raw read takes 1 MB at most. Read it in numbered parts."
        )
    try:
        text = target.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, f"{path} is not UTF-8 text.") from None
    return {"content": text, "total_lines": len(text.splitlines())}


def save(target: Path, data: bytes) -> None:
    """Write `data`; an existing file is replaced atomically and keeps its mode."""
    if not target.exists():
        target.write_bytes(data)
        return
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def encoded(text: str, name: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, f"{name} is not valid Unicode text (a lone surrogate).") from None


def write(server: SandboxServer, body: dict[str, Any]) -> dict[str, Any]:
    """Write a whole file as UTF-8, creating its parent directories."""
    path, content = take(body, "path", str), take(body, "content", str)
    data = encoded(content, "content")
    target = resolve(server.root, path)
    if target.is_dir():
        raise ApiError(400, f"{path} is a directory; give a file path.")
    target.parent.mkdir(parents=True, exist_ok=True)
    save(target, data)
    lines = content.count("\n") + (0 if content.endswith("\n") or not content else 1)
    return {"message": f"Wrote {len(data)} bytes ({lines} lines) to {target}"}


def snippet(text: str, start: int, length: int) -> str:
    """Numbered lines around the region [start, start + length) of `text`."""
    lines = text.removesuffix("\n").split("\n")
    first = text.count("\n", 0, start) + 1
    last = text.count("\n", 0, start + max(length - 1, 0)) + 1
    low, high = max(1, first - SNIPPET_CONTEXT), min(len(lines), last + SNIPPET_CONTEXT)
    high = min(high, low + SNIPPET_MAX_LINES - 1)
    return "\n".join(number_line(n, lines[n - 1], 200) for n in range(low, high + 1))


def edit(server: SandboxServer, body: dict[str, Any]) -> dict[str, Any]:
    """Replace (or insert around) an exact, unique old_str."""
    path, old, new = take(body, "path", str), take(body, "old_str", str), take(body, "new_str", str)
    replace_all, mode = take(body, "replace_all", bool, False), take(body, "mode", str, "replace")
    if mode not in EDIT_MODES:
        raise ApiError(400, f"mode must be one of {', '.join(EDIT_MODES)}")
    if not old:
        raise ApiError(
            400, "old_str is empty. To create a file use write; to insert text, quote a nearby line."
        )
    if old == new and mode == "replace":
        raise ApiError(400, "old_str and new_str are identical; nothing to change.")
    target = resolve(server.root, path)
    require_file(target, path)
    if target.stat().st_size > MAX_EDIT_BYTES:
        raise ApiError(400, f"{path} is too large to edit here; change it with bash (e.g. sed).")
    try:
        text = target.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, f"{path} is not UTF-8 text; edit it with bash instead.") from None
    crlf = "\r\n" in text and text.count("\r\n") == text.count("\n")
    if crlf:
        text, old, new = (s.replace("\r\n", "\n") for s in (text, old, new))
    count = text.count(old)
    if not count:
        raise ApiError(400, f"old_str not found in {path}. Read the file again and copy the exact text.")
    if count > 1 and not replace_all:
        raise ApiError(
            400,
            f"old_str found {count} times in {path}. Include more surrounding lines to make it unique, "
            "or set replace_all=true to change all of them.",
        )
    replacement = {"append_after": old + new, "prepend_before": new + old}.get(mode, new)
    start, edited = text.find(old), text.replace(old, replacement)
    save(target, encoded(edited.replace("\n", "\r\n") if crlf else edited, "new_str"))
    return {
        "message": f"Edited {target} ({count} replacement{'s' if count > 1 else ''})",
        "snippet": snippet(edited, start, len(replacement)),
    }


def exists(server: SandboxServer, body: dict[str, Any]) -> dict[str, Any]:
    """Whether a path exists, is a directory, and its size."""
    target = resolve(server.root, take(body, "path", str))
    try:
        info = target.stat()
    except (FileNotFoundError, NotADirectoryError):
        return {"exists": False, "is_dir": False, "size": None}
    return {"exists": True, "is_dir": stat.S_ISDIR(info.st_mode), "size": info.st_size}


OPERATIONS: dict[str, Callable[[SandboxServer, dict[str, Any]], dict[str, Any]]] = {
    "bash": run_bash,
    "read": read,
    "write": write,
    "edit": edit,
    "exists": exists,
    "kill": kill,
}


# HTTP


class SandboxServer(ThreadingHTTPServer):
    """The HTTP server with what the operations share: the root, the token, the spill dir, the groups."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], root: Path, token: str, spill_dir: Path) -> None:
        super().__init__(address, Handler)
        self.root, self.token, self.spill_dir = root, token, spill_dir
        self.groups = ProcessGroups()


class Handler(BaseHTTPRequestHandler):
    """Routes /api/<op>: auth, body, operation; every reply (errors too) is JSON."""

    server: SandboxServer
    protocol_version = "HTTP/1.1"
    server_version = "ml-intern-sandbox/1"
    sys_version = ""
    timeout = SOCKET_TIMEOUT

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/api/health":
            self.reply(200, {"ok": True, "version": VERSION})
        else:
            self.answer(self.refuse_get)

    def do_POST(self) -> None:
        self.answer(self.dispatch)

    def answer(self, work: Callable[[], dict[str, Any]]) -> None:
        """Run `work` and reply: its result, or its failure as one JSON line."""
        self.body_read = False
        try:
            status, payload = 200, work()
        except ApiError as error:
            status, payload = error.status, {"error": error.message}
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            status, payload = 500, {"error": one_line(f"internal error: {type(error).__name__}: {error}")}
        if not self.body_read:
            self.discard_body()
        self.reply(status, payload)

    def operation(self) -> str:
        self.check_auth()
        parts = urlsplit(self.path).path.split("/")
        if len(parts) != 3 or parts[1] != "api" or parts[2] not in OPERATIONS:
            raise ApiError(404, f"unknown operation {self.path[:100]!r}; use POST /api/<op>")
        return parts[2]

    def refuse_get(self) -> dict[str, Any]:
        self.operation()
        raise ApiError(405, "use POST for this operation")

    def dispatch(self) -> dict[str, Any]:
        name = self.operation()
        body = self.read_body()
        try:
            return OPERATIONS[name](self.server, body)
        except OSError as error:
            raise ApiError(400, f"{name} failed: {error}") from None

    def check_auth(self) -> None:
        token = self.server.token
        if not token:
            raise ApiError(503, f"the sandbox has no {TOKEN_ENV}; recreate the sandbox")
        given = self.headers.get(AUTH_HEADER)
        if given is None:
            raise ApiError(401, f"missing {AUTH_HEADER} header")
        expected = f"Bearer {token}".encode()
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected):
            raise ApiError(401, "wrong sandbox token")

    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        if value is None or self.headers.get("Transfer-Encoding"):
            return None
        return int(value) if value.strip().isdigit() else -1

    def read_body(self) -> dict[str, Any]:
        length = self.content_length()
        if length is None:
            raise ApiError(411, "Content-Length required")
        if length < 0:
            raise ApiError(400, "bad Content-Length")
        if length > MAX_BODY:
            raise ApiError(413, f"request body over {MAX_BODY // (1 << 20)} MB; send less at a time")
        data = self.rfile.read(length)
        self.body_read = True
        try:
            body = json.loads(data)
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        return body

    def discard_body(self) -> None:
        """Read and drop a body we refused (closing on unread data would reset the client's connection)."""
        self.close_connection = True
        remaining = self.content_length()
        if remaining is None or remaining < 0 or remaining > DRAIN_LIMIT:
            return
        try:
            while remaining > 0 and (chunk := self.rfile.read(min(remaining, READ_CHUNK))):
                remaining -= len(chunk)
        except OSError:
            pass

    def reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except OSError as error:  # the client has gone
            self.close_connection = True
            self.log_message("could not send the reply: %s", error)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, unsupported method) as JSON too."""
        self.close_connection = True
        self.reply(code, {"error": one_line(message or HTTPStatus(code).phrase)})


# Running it


def port_from_environment() -> int:
    value = os.environ.get("PORT", "7860")
    if not value.isdigit():
        raise SystemExit(f"sandbox server: PORT must be a number, not {value!r}")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The ml-intern sandbox server.")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--root", default=os.environ.get("SANDBOX_ROOT") or str(APP))
    args = parser.parse_args(argv)
    port = port_from_environment() if args.port is None else args.port
    root = Path(args.root).expanduser().resolve()
    spill_dir = Path(os.environ.get("SANDBOX_SPILL_DIR") or DEFAULT_SPILL_DIR)
    token = os.environ.get(TOKEN_ENV, "")
    try:
        root.mkdir(parents=True, exist_ok=True)
        server = SandboxServer((args.host, port), root, token, spill_dir)
    except OSError as error:
        print(f"sandbox server: cannot start on {args.host}:{port} in {root}: {error}", file=sys.stderr)
        return 2
    if not token:
        print(f"sandbox server: {TOKEN_ENV} is not set: every call but health answers 503", file=sys.stderr)

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    host, bound_port = server.server_address[:2]
    print(f"listening on http://{host}:{bound_port}", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server.groups.kill()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
