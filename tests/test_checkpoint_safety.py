"""Reading a checkpoint never runs code a row names: anyone with the team database's URL can write rows every
machine reads, so a planted constructor (here `os.system`) comes back as its data, on both backends, and the
thread still shows; a planted zlib bomb is refused in one line, not inflated without end."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import zlib
from contextlib import closing
from pathlib import Path

import ormsgpack
import psycopg
import pytest
from langchain_core.messages import AIMessage
from langgraph.checkpoint.serde.jsonplus import EXT_CONSTRUCTOR_POS_ARGS, EXT_CONSTRUCTOR_SINGLE_ARG

from ml_intern.cli import app
from ml_intern.paths import database_path
from ml_intern.session.checkpointer import INFLATED_MAX, CompressingSerializer
from tests.fakes import llm_server as script
from tests.harness import Sandbox
from tests.harness_cli import seed_thread

THREAD = "5afe0000c0de"


def ml_intern(*args: str) -> int:
    return app(args=list(args), standalone_mode=False) or 0


def planted(marker: Path) -> ormsgpack.Ext:
    """What a hostile row holds: `os.system("touch MARKER")`, in the form LangGraph's reader revives."""
    call = ormsgpack.packb(("os", "system", f"touch {marker}"))
    return ormsgpack.Ext(EXT_CONSTRUCTOR_SINGLE_ARG, call)


def keep_ext(code: int, data: bytes) -> ormsgpack.Ext:
    return ormsgpack.Ext(code, data)


def plant_in_sqlite(path: Path, marker: Path) -> None:
    """Every checkpoint's `usage` value replaced by the planted call (the rest of each checkpoint kept)."""
    with closing(sqlite3.connect(path)) as db, db:  # closed, not left to the GC
        for rowid, kind, blob in db.execute("SELECT rowid, type, checkpoint FROM checkpoints").fetchall():
            raw = zlib.decompress(blob) if kind.endswith("+zlib") else blob
            checkpoint = ormsgpack.unpackb(raw, ext_hook=keep_ext, option=ormsgpack.OPT_NON_STR_KEYS)
            checkpoint["channel_values"]["usage"] = planted(marker)
            data = ormsgpack.packb(checkpoint, option=ormsgpack.OPT_NON_STR_KEYS)
            db.execute(
                "UPDATE checkpoints SET type = 'msgpack', checkpoint = ? WHERE rowid = ?", (data, rowid)
            )


def plant_in_postgres(url: str, marker: Path) -> None:
    data = ormsgpack.packb(planted(marker))
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "UPDATE checkpoint_blobs SET type = 'msgpack', blob = %s WHERE channel = 'usage'", (data,)
        )
        assert found.rowcount > 0


def zlib_bomb() -> bytes:
    """A few hundred KB that inflate to just over INFLATED_MAX bytes (made in 1 MB steps: little memory)."""
    squeeze, zeros = zlib.compressobj(9), bytes(1 << 20)
    parts = [squeeze.compress(zeros) for _ in range((INFLATED_MAX >> 20) + 1)]
    return b"".join(parts) + squeeze.flush()


def plant_bomb(backend: str, url: str | None) -> None:
    """The bomb as the `usage` channel of every checkpoint of the thread (SQLite: whole checkpoints)."""
    if backend == "sqlite":
        with closing(sqlite3.connect(database_path(os.environ))) as db, db:  # closed, not left to the GC
            db.execute("UPDATE checkpoints SET type = 'msgpack+zlib', checkpoint = ?", (zlib_bomb(),))
        return
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "UPDATE checkpoint_blobs SET type = 'msgpack+zlib', blob = %s WHERE channel = 'usage'",
            (zlib_bomb(),),
        )
        assert found.rowcount > 0


def test_the_serializer_gives_a_planted_call_back_as_data(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    serde = CompressingSerializer()
    single = ormsgpack.packb([planted(marker), "kept"])
    assert serde.loads_typed(("msgpack", single)) == [f"touch {marker}", "kept"]
    many = ormsgpack.packb(ormsgpack.Ext(EXT_CONSTRUCTOR_POS_ARGS, ormsgpack.packb(("os", "system", ["x"]))))
    assert serde.loads_typed(("msgpack+zlib", zlib.compress(many))) == ["x"]
    assert not marker.exists()
    message = serde.dumps_typed({"a": AIMessage("hi")})
    assert serde.loads_typed(message)["a"].content == "hi"  # what ml-intern stores still comes back whole


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_planted_constructor_in_a_checkpoint_runs_nothing_when_the_thread_is_read(
    backend: str, sandbox: Sandbox, postgres_server: object, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    answers = [script.tool_call("write", {"path": "notes.txt", "content": "draft\n"}, id="w1"), "Wrote it."]
    asyncio.run(seed_thread(THREAD, "write the notes", answers))
    marker = sandbox.ml_intern_home.parent / "planted-call-ran"
    if backend == "sqlite":
        plant_in_sqlite(database_path(os.environ), marker)
    else:
        url = postgres_server.create_database()
        assert ml_intern("db", "copy", "--from", "sqlite", "--to", url) == 0
        plant_in_postgres(url, marker)
        monkeypatch.setenv("ML_INTERN_DATABASE_URL", url)
    capsys.readouterr()
    assert ml_intern("show", THREAD) == 0
    assert not marker.exists()
    out = capsys.readouterr().out
    assert "write the notes" in out  # the transcript reads as before


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_planted_zlib_bomb_is_refused_in_one_line_not_inflated(
    backend: str, sandbox: Sandbox, postgres_server: object, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    asyncio.run(seed_thread(THREAD, "say hi", ["Hi."]))
    url = None
    if backend == "postgres":
        url = postgres_server.create_database()
        assert ml_intern("db", "copy", "--from", "sqlite", "--to", url) == 0
        monkeypatch.setenv("ML_INTERN_DATABASE_URL", url)
    plant_bomb(backend, url)
    capsys.readouterr()
    assert ml_intern("show", THREAD) == 1
    err = capsys.readouterr().err
    assert err.startswith("ml-intern: error: a checkpoint of this thread inflates to over 256 MB: ")
    assert err.count("\n") == 1 and "internal error" not in err
