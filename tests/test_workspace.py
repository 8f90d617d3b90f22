"""Workspace snapshots: what a scan records and skips, hash reuse, content-addressed storage, caps, speed."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ml_intern.session.session import open_session
from ml_intern.session.workspace import (
    MAX_FILE_BYTES,
    BlobStore,
    Manifest,
    Scanner,
    changed_paths,
)

HOUR_NS = 3600 * 10**9


def write(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def blobs(store: BlobStore) -> list[Path]:
    return [p for p in store.root.rglob("*") if p.is_file()] if store.root.exists() else []


def scan(workdir: Path, store: BlobStore, previous: Manifest | None = None, **limits: int) -> Manifest:
    return Scanner(store, previous, set(), **limits).scan(workdir)


async def test_snapshot_skips_vcs_envs_caches_and_ml_intern_home(sandbox):
    work = sandbox.workdir
    for rel in (".git/HEAD", ".venv/lib/x.py", "venv/y", "node_modules/z/i.js", "pkg/__pycache__/m.pyc"):
        write(work, rel, b"junk")
    write(work, ".langgraph_api/store.pckl", b"junk")
    write(work, "pkg/m.py", b"print(1)\n")
    write(work, "README.md", b"# hi\n")
    (work / "empty").mkdir()
    database = work / "state" / "checkpoints.sqlite"  # ML_INTERN_HOME inside the working directory
    async with open_session(database) as session:
        manifest = await session.snapshots.begin_turn("t", "", work)
    assert sorted(manifest.files) == ["README.md", "pkg/m.py"]
    assert manifest.dirs == {"empty", "pkg"}
    assert not manifest.truncated
    store = session.snapshots.store
    assert store.root == (work / "state" / "snapshots" / "blobs").resolve()
    assert store.get(manifest.files["pkg/m.py"][2]) == b"print(1)\n"


def test_unchanged_size_and_mtime_reuse_the_hash_without_reading(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    work = tmp_path / "work"
    old = write(work, "old.txt", b"aaaa")
    os.utime(old, ns=(time.time_ns() - HOUR_NS,) * 2)
    first = scan(work, store)
    mtime = old.stat().st_mtime_ns
    old.write_bytes(b"bbbb")  # same size; mtime put back: only a read could notice
    os.utime(old, ns=(mtime, mtime))
    assert scan(work, store, first).files["old.txt"] == first.files["old.txt"]


def test_recently_modified_files_are_hashed_again_despite_equal_stat(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    work = tmp_path / "work"
    fresh = write(work, "fresh.txt", b"aaaa")
    first = scan(work, store)
    mtime = fresh.stat().st_mtime_ns
    fresh.write_bytes(b"bbbb")  # within the racy window: the timestamp may not have moved
    os.utime(fresh, ns=(mtime, mtime))
    second = scan(work, store, first)
    assert second.files["fresh.txt"][2] != first.files["fresh.txt"][2]
    assert store.get(second.files["fresh.txt"][2]) == b"bbbb"


def test_identical_contents_are_stored_once(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    work = tmp_path / "work"
    for rel in ("a.txt", "b/a.txt", "c/d/a.txt"):
        write(work, rel, b"same\n")
    manifest = scan(work, store)
    assert len({entry[2] for entry in manifest.files.values()}) == 1
    assert len(blobs(store)) == 1


def test_file_cap_truncates_the_scan(tmp_path):
    work = tmp_path / "work"
    for n in range(5):
        write(work, f"f{n}.txt", b"x")
    manifest = scan(work, BlobStore(tmp_path / "blobs"), max_files=3)
    assert manifest.truncated and sorted(manifest.files) == ["f0.txt", "f1.txt", "f2.txt"]


def test_files_over_the_size_cap_are_listed_but_not_copied(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    work = tmp_path / "work"
    write(work, "big.bin", b"x" * 100)
    write(work, "small.txt", b"x")
    manifest = scan(work, store, max_file_bytes=10)
    assert manifest.files["big.bin"][:3] == (100, manifest.files["big.bin"][1], None)
    assert [store.get(manifest.files["small.txt"][2])] == [p.read_bytes() for p in blobs(store)]
    assert MAX_FILE_BYTES == 20 * 2**20


def test_manifest_round_trips_through_bytes_and_identical_ones_are_equal(tmp_path):
    work = tmp_path / "work"
    write(work, "d/a.txt", b"a")
    manifest = scan(work, BlobStore(tmp_path / "blobs"))
    assert scan(work, BlobStore(tmp_path / "blobs"), manifest).to_bytes() == manifest.to_bytes()
    assert Manifest.from_bytes(manifest.to_bytes(), manifest.taken_ns) == manifest


def test_changed_paths_compare_content_and_mode_not_mtime():
    start = Manifest(
        files={
            "same.txt": (1, 1, "s", 0o644),
            "touched.txt": (1, 1, "t", 0o644),
            "mode.sh": (1, 1, "m", 0o644),
        },
        dirs=set(),
    )
    start.files["gone.txt"] = (1, 1, "g", 0o644)
    end = Manifest(
        files={
            "same.txt": (1, 1, "s", 0o644),
            "touched.txt": (1, 9, "t", 0o644),
            "mode.sh": (1, 1, "m", 0o755),
            "new.txt": (2, 2, "n", 0o644),
        }
    )
    assert changed_paths(start, end) == {"mode.sh", "gone.txt", "new.txt"}
    end.truncated = True  # a path missing from a truncated scan may simply not have been reached
    assert changed_paths(start, end) == {"mode.sh", "new.txt"}


async def test_snapshots_of_2000_small_files_are_fast(sandbox):
    work = sandbox.workdir
    for n in range(2000):
        write(work, f"pkg{n % 40}/module_{n}.py", f"VALUE = {n}\n".encode() * 20)
    async with open_session(sandbox.ml_intern_home / "checkpoints.sqlite") as session:
        started = time.perf_counter()
        first = await session.snapshots.begin_turn("t", "", work)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        await session.snapshots.end_turn("t")
        warm = time.perf_counter() - started
    print(f"snapshot of 2000 files: first {cold * 1000:.0f} ms, next {warm * 1000:.0f} ms")
    assert len(first.files) == 2000
    assert warm < 1.0
