"""Workspace scans: what a scan records and skips, hash reuse, content-addressed storage, caps, speed, and the
pruning of what undo no longer needs."""

from __future__ import annotations

import hashlib
import json
import os
import time
import zlib
from pathlib import Path

import pytest

from ml_intern.session.blobs import BlobStore
from ml_intern.session.changes import diff
from ml_intern.session.manifests import MAX_FILE_BYTES, Manifest, Scanner
from ml_intern.session.session import open_session

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


async def test_scan_records_vcs_envs_by_mtime_skips_caches_and_ml_intern_home(sandbox):
    work = sandbox.workdir
    for rel in (".git/HEAD", ".venv/lib/x.py", "venv/y", "node_modules/z/i.js", "pkg/__pycache__/m.pyc"):
        write(work, rel, b"junk")
    write(work, ".langgraph_api/store.pckl", b"junk")
    write(work, "pkg/m.py", b"print(1)\n")
    write(work, "README.md", b"# hi\n")
    (work / "empty").mkdir()
    (work / "link").symlink_to("/etc")
    database = work / "state" / "checkpoints.sqlite"  # ML_INTERN_HOME inside the working directory
    async with open_session(database) as session:
        manifest = await session.snapshots.scan(work.resolve(), None, copy=True)
    assert sorted(manifest.files) == ["README.md", "pkg/m.py"]
    assert manifest.dirs == {"empty", "pkg"}
    assert sorted(manifest.opaque) == [".git", ".venv", "node_modules", "venv"]  # mtime only, never entered
    assert manifest.links == {"link": "/etc"}
    assert not manifest.truncated
    store = session.snapshots.store
    assert store.root == (work / "state" / "snapshots" / "blobs").resolve()
    assert store.get(manifest.files["pkg/m.py"][2]) == b"print(1)\n"


def test_credential_files_are_never_read_and_secret_contents_never_copied(tmp_path, monkeypatch):
    store = BlobStore(tmp_path / "blobs")
    work = tmp_path / "work"
    token = "hf_" + "Q" * 34
    for rel in (".env", "server.key", ".ssh/id_rsa", ".aws/credentials", ".netrc", "secrets.json"):
        write(work, rel, f"TOKEN={token}\n".encode())
    write(work, "envdump.txt", f"HF_TOKEN={token}\n".encode())
    write(work, "plain.txt", b"nothing secret\n")
    manifest = scan(work, store)
    assert manifest.uncopied.pop("envdump.txt") == "holds a secret"
    assert set(manifest.uncopied.values()) == {"credential file"}
    assert len(blobs(store)) == 1 and store.get(manifest.files["plain.txt"][2]) == b"nothing secret\n"
    assert manifest.files[".env"][2] is None  # not even hashed
    write(work, "later.txt", b"written after\n")
    Scanner(store, manifest, set(), copy=False).scan(work)  # a scan after a call only hashes
    assert len(blobs(store)) == 1


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
    assert store.get(manifest.files["small.txt"][2]) == b"x" and len(blobs(store)) == 1
    assert MAX_FILE_BYTES == 20 * 2**20


def test_manifest_round_trips_through_bytes_and_identical_ones_are_equal(tmp_path):
    work = tmp_path / "work"
    write(work, "d/a.txt", b"a")
    manifest = scan(work, BlobStore(tmp_path / "blobs"))
    assert scan(work, BlobStore(tmp_path / "blobs"), manifest).to_bytes() == manifest.to_bytes()
    assert Manifest.from_bytes(manifest.to_bytes(), manifest.taken_ns) == manifest


def test_diff_compares_content_and_mode_not_mtime_and_sees_links_and_skipped_dirs():
    start = Manifest(
        files={
            "same.txt": (1, 1, "s", 0o644),
            "touched.txt": (1, 1, "t", 0o644),
            "mode.sh": (1, 1, "m", 0o644),
            "gone.txt": (1, 1, "g", 0o644),
        },
        dirs={"d"},
        links={"l": "a"},
        opaque={"venv": 1},
    )
    end = Manifest(
        files={
            "same.txt": (1, 1, "s", 0o644),
            "touched.txt": (1, 9, "t", 0o644),
            "mode.sh": (1, 1, "m", 0o755),
            "new.txt": (2, 2, "n", 0o644),
        },
        dirs={"d"},
        links={"l": "b"},
        opaque={"venv": 2},
    )
    assert [change[0] for change in diff(start, end)] == ["gone.txt", "l", "mode.sh", "new.txt", "venv"]
    end.truncated = True  # a path missing from a truncated scan may simply not have been reached
    assert [change[0] for change in diff(start, end)] == ["l", "mode.sh", "new.txt", "venv"]


async def test_snapshots_of_2000_small_files_are_fast(sandbox):
    work = sandbox.workdir
    for n in range(2000):
        write(work, f"pkg{n % 40}/module_{n}.py", f"VALUE = {n}\n".encode() * 20)
    async with open_session(sandbox.ml_intern_home / "checkpoints.sqlite") as session:
        started = time.perf_counter()
        first = await session.snapshots.scan(work, None, copy=True)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        await session.snapshots.scan(work, None, copy=False)
        warm = time.perf_counter() - started
    print(f"scan of 2000 files: first {cold * 1000:.0f} ms, next {warm * 1000:.0f} ms")
    assert len(first.files) == 2000
    assert warm < 0.5


def store_bytes(store: BlobStore) -> int:
    return sum(p.stat().st_size for p in blobs(store))


def age(store: BlobStore, seconds: float = 3600) -> None:
    """Date every blob `seconds` back, past the sweep's grace period for scans still running elsewhere."""
    then = time.time() - seconds
    for path in blobs(store):
        os.utime(path, (then, then))


def test_a_large_compressible_file_is_stored_compressed_and_read_back_exactly(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    work = tmp_path / "work"
    text = b"".join(b"step %d loss=0.%04d lr=3e-4 grad_norm=1.0\n" % (n, n % 9973) for n in range(50_000))
    write(work, "train.log", text)
    manifest = scan(work, store)
    assert store.get(manifest.files["train.log"][2]) == text
    assert store_bytes(store) < len(text) // 4
    assert [p.suffix for p in blobs(store)] == [".z"]


def test_contents_that_do_not_shrink_are_stored_as_they_are(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    noise = os.urandom(300_000)
    sha = store.put(noise)
    assert [p.read_bytes() for p in blobs(store)] == [noise]
    assert store.get(sha) == noise


def test_uncompressed_blobs_and_manifests_of_older_versions_are_read(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    content = b"written before blobs were compressed\n" * 100
    sha = hashlib.sha256(content).hexdigest()
    write(Path(store.path(sha)).parent, Path(store.path(sha)).name, content)  # the old layout
    old_manifest = zlib.compress(
        json.dumps({"files": {"a": [1, 2, sha, 420]}, "dirs": [], "truncated": False}).encode()
    )
    assert store.get(sha) == content
    assert store.put(content) == sha and len(blobs(store)) == 1  # found, not stored again
    assert Manifest.from_bytes(old_manifest).files == {"a": (1, 2, sha, 420)}


def test_sweep_keeps_live_and_recent_blobs(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    live, dead = store.put(b"live" * 100), store.put(b"dead" * 100)
    assert store.sweep({live}, grace_s=600).blobs == 0  # `dead` is new: a scan elsewhere may be using it
    age(store)
    swept = store.sweep({live}, grace_s=600)
    assert (swept.blobs, store.get(live)) == (1, b"live" * 100)
    with pytest.raises(FileNotFoundError):
        store.get(dead)


async def recorded_turn(snapshots, thread: str, base: str, work: Path, files: dict[str, bytes]) -> None:
    """One user turn of `thread` whose one recorded call writes `files`."""
    journal = await snapshots.begin_turn(thread, base, work)

    async def call() -> None:
        for rel, data in files.items():
            write(work, rel, data)

    await journal.record([{"name": "bash", "id": f"{thread}-{base}", "args": {}}], call)
    await snapshots.end_turn(thread)


def stored(store: BlobStore, data: bytes) -> bool:
    try:
        return store.get(hashlib.sha256(data).hexdigest()) == data
    except FileNotFoundError:
        return False


async def test_deleting_a_thread_prunes_its_blobs_but_not_those_another_thread_uses(sandbox):
    work = sandbox.workdir
    for rel in ("a.txt", "b.txt"):
        write(work, rel, b"both threads overwrote this\n")
    write(work, "a-only.txt", b"only thread a overwrote this\n")
    async with open_session(sandbox.ml_intern_home / "checkpoints.sqlite") as session:
        snapshots, store = session.snapshots, session.snapshots.store
        await recorded_turn(snapshots, "a", "", work, {"a.txt": b"A\n", "a-only.txt": b"A\n"})
        await recorded_turn(snapshots, "b", "", work, {"b.txt": b"B\n"})
        age(store)
        await snapshots.forget_thread("a")
        await snapshots.prune()
        assert not stored(store, b"only thread a overwrote this\n")
        assert stored(store, b"both threads overwrote this\n")
        assert not stored(store, b"A\n") and not stored(store, b"B\n")  # after-states: hashes only
        await snapshots.forget_thread("b")
        await snapshots.prune()
    assert blobs(store) == []


async def test_turns_beyond_the_kept_number_lose_their_records_and_blobs(sandbox):
    work = sandbox.workdir
    async with open_session(sandbox.ml_intern_home / "checkpoints.sqlite") as session:
        snapshots, store = session.snapshots, session.snapshots.store
        assert snapshots.keep_turns == 50  # the schema's default
        snapshots.keep_turns = 2
        for n in range(4):
            write(work, "f.txt", b"content %d\n" % n * 50)  # the user's, overwritten by each turn
            await recorded_turn(snapshots, "t", f"base{n}", work, {"f.txt": b"agent\n"})
            age(store)
        bases = ("base0", "base1", "base2", "base3")
        kept = [base for base in bases if await snapshots.turn_owner("t", base) is not None]
    assert kept == ["base2", "base3"]
    assert [stored(store, b"content %d\n" % n * 50) for n in range(4)] == [False, False, True, True]


async def test_turns_past_the_limit_are_dropped_a_fifth_of_the_limit_at_a_time(sandbox):
    work = sandbox.workdir
    async with open_session(sandbox.ml_intern_home / "checkpoints.sqlite") as session:
        snapshots = session.snapshots
        snapshots.keep_turns = 10
        counts = []
        for n in range(13):
            await recorded_turn(snapshots, "t", f"base{n:02}", work, {"f.txt": b"%d\n" % n})
            async with snapshots.conn.execute("SELECT COUNT(*) FROM ml_intern_undo_turns") as cursor:
                counts.append((await cursor.fetchone())[0])
    assert counts == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 10, 11]
