"""What one tool call changed: the difference of the manifests taken around it, path by path.

A path's state is a JSON list, or None when nothing is there:
  ["file", size, mtime_ns, sha256 | None, mode, why not copied | None]
  ["link", target]  ["dir"]  ["opaque", mtime_ns] (a skipped dir: .git, venv, node_modules)
"""

from __future__ import annotations

from typing import Any

from ml_intern.session.manifests import HASH_ONLY, Manifest

State = list[Any] | None
Change = tuple[str, State, State]  # path, before the call, after it


def state_in(manifest: Manifest, rel: str) -> State:
    """What `manifest` says is at `rel`."""
    if rel in manifest.files:
        size, mtime, sha, mode = manifest.files[rel]
        return ["file", size, mtime, sha, mode, manifest.uncopied.get(rel)]
    if rel in manifest.links:
        return ["link", manifest.links[rel]]
    if rel in manifest.opaque:
        return ["opaque", manifest.opaque[rel]]
    return ["dir"] if rel in manifest.dirs else None


def same(a: State, b: State) -> bool:
    """Whether two states are the same content (mtime counts only where there is no hash)."""
    if a is None or b is None:
        return a is b
    if a[0] != b[0]:
        return False
    if a[0] == "file":
        if a[3] and b[3]:
            return (a[1], a[3], a[4]) == (b[1], b[3], b[4])
        return (a[1], a[2], a[4]) == (b[1], b[2], b[4])
    return a[1:] == b[1:]


def diff(before: Manifest, after: Manifest) -> list[Change]:
    """Every path whose state differs; with a truncated manifest, only paths both scans could see."""
    changes = []
    for rel in sorted(_paths(before) | _paths(after)):
        a, b = state_in(before, rel), state_in(after, rel)
        seen = (a is not None or not before.truncated) and (b is not None or not after.truncated)
        if seen and not same(a, b):
            changes.append((rel, a, _as_after(b)))
    return changes


def _paths(manifest: Manifest) -> set[str]:
    return manifest.files.keys() | manifest.links.keys() | manifest.opaque.keys() | manifest.dirs


def _as_after(state: State) -> State:
    """After-states are hashes, never copies: the reason 'hash only' says nothing more."""
    if state is not None and state[0] == "file" and state[5] == HASH_ONLY:
        return [*state[:5], None]
    return state


def copied_blobs(changes: list[Change]) -> set[str]:
    """The store blobs holding the before-states of `changes` (what undo needs kept)."""
    return {b[3] for _, b, _ in changes if b and b[0] == "file" and b[3] and not b[5]}


def legacy_changed_paths(start: Manifest, end: Manifest) -> set[str]:
    """Files that differ between the whole-turn manifests of older versions (listed, never reverted)."""
    paths = set()
    for path in start.files.keys() | end.files.keys():
        a, b = start.files.get(path), end.files.get(path)
        if a is None or b is None or a[2] is None or b[2] is None:
            differs = a is None or b is None or a[:2] != b[:2]
        else:
            differs = (a[0], a[2], a[3]) != (b[0], b[2], b[3])
        if differs:
            paths.add(path)
    return paths
