"""A stdio MCP server's stderr, appended to its log file with secrets redacted.

The MCP SDK hands `errlog` to the child process as its stderr, so it must be a real file descriptor: the
server writes into a pipe, and a daemon thread copies what arrives to the log through a StreamRedactor (a
secret cut between two reads is still seen whole). The last few words are written when more arrive or the
server exits.
"""

from __future__ import annotations

import codecs
import os
import threading
from contextlib import suppress
from pathlib import Path
from typing import IO

from ml_intern.secrets import StreamRedactor, redact

READ_BYTES = 64 * 1024


class RedactedLog:
    """A pipe to give a server as its stderr (`stderr`), copied to `path` redacted until the server exits."""

    def __init__(self, path: Path, header: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._log = path.open("a", encoding="utf-8")
        self._log.write(redact(header))
        self._log.flush()
        read_fd, write_fd = os.pipe()
        self.stderr: IO[str] = os.fdopen(write_fd, "w", encoding="utf-8")
        self._thread = threading.Thread(target=self._copy, args=(read_fd,), daemon=True, name="mcp-stderr")
        self._thread.start()

    def _copy(self, read_fd: int) -> None:
        """Read the pipe to its end, writing each piece once it is safe to."""
        redactor, decoder = StreamRedactor(), codecs.getincrementaldecoder("utf-8")("replace")
        try:
            while chunk := os.read(read_fd, READ_BYTES):
                self._write(redactor.feed(decoder.decode(chunk)))
            self._write(redactor.feed(decoder.decode(b"", final=True)) + redactor.flush())
        except (OSError, ValueError):  # the log cannot be written (disk full, closed): drain, discard
            with suppress(OSError):  # the server must never meet a closed pipe (EPIPE) on its stderr
                while os.read(read_fd, READ_BYTES):
                    pass
        finally:
            os.close(read_fd)
            with suppress(OSError):
                self._log.close()

    def _write(self, text: str) -> None:
        if text:
            self._log.write(text)
            self._log.flush()

    def started(self) -> None:
        """The server holds its own copy of the pipe now: close ours, so its exit ends the copying."""
        with suppress(OSError):
            self.stderr.close()

    def close(self, timeout: float = 2.0) -> None:
        """Close our end and wait (a little) for the copy to finish: a server's children may hold the pipe."""
        self.started()
        self._thread.join(timeout)
