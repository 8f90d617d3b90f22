"""`github_find_examples`: example scripts in a repository, by directory convention and keyword."""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import PurePosixPath

from ml_intern.tools.base import ToolError
from ml_intern.tools.web.github_api import GitHubApi, repo_path, split_repo

EXAMPLE_DIRS = (  # in order of preference
    "scripts", "examples", "example", "notebooks", "notebook", "tutorials", "tutorial", "quickstart",
    "cookbook", "cookbooks", "recipes", "recipe", "demos", "demo", "samples", "sample", "guides", "guide",
    "getting-started", "getting_started", "walkthroughs", "use-cases", "use_cases", "training", "train",
)  # fmt: skip
EXAMPLE_SUFFIXES = {".py", ".ipynb", ".md", ".mdx", ".sh", ".yaml", ".yml", ".toml", ".json", ".js", ".ts"}
MIN_SCORE = 50  # our score scale (60 x similarity for typos), not thefuzz's
SIMILAR_REPOS = 10


@dataclass(frozen=True)
class RepoFile:
    """A file of the repository tree."""

    path: str
    size: int


def example_rank(path: str) -> tuple[int, int, int]:
    """Sort key: top-level examples/ first, then the preferred directory name, then shallow first."""
    parts = path.lower().split("/")
    top_examples = 0 if parts[0] in ("examples", "example") else 1
    best = min((EXAMPLE_DIRS.index(p) for p in parts[:-1] if p in EXAMPLE_DIRS), default=len(EXAMPLE_DIRS))
    return top_examples, best, len(parts)


def is_example(file: RepoFile) -> bool:
    """A code or doc file inside an examples-like directory."""
    path = PurePosixPath(file.path.lower())
    return path.suffix in EXAMPLE_SUFFIXES and any(part in EXAMPLE_DIRS for part in path.parts[:-1])


def keyword_score(path: str, keyword: str) -> float:
    """0-100: exact file name, name contains, path contains, every word present, else fuzzy similarity."""
    keyword, path = keyword.lower().strip(), path.lower()
    stem = PurePosixPath(path).stem
    words = re.findall(r"[a-z0-9]+", keyword)
    if keyword == stem:
        return 100.0
    if keyword in stem:
        return 90.0
    if keyword in path:
        return 80.0
    if words and all(word in path for word in words):
        return 70.0
    tokens = [stem, *re.findall(r"[a-z0-9]+", path)]
    return 60.0 * max(SequenceMatcher(None, keyword, token).ratio() for token in tokens)


def pick_examples(
    files: list[RepoFile], keyword: str, limit: int, min_score: float = MIN_SCORE
) -> tuple[list[RepoFile], int, bool]:
    """(best matches scoring at least `min_score`, how many matched, whether they come from outside the
    example directories)."""
    examples = [f for f in files if is_example(f)]
    if not keyword:
        ranked = sorted(examples, key=lambda f: (example_rank(f.path), f.path))
        return ranked[:limit], len(ranked), False
    for pool, outside in ((examples, False), (files, True)):
        scored = [(keyword_score(f.path, keyword), f) for f in pool]
        matches = [(s, f) for s, f in scored if s >= min_score]
        if matches:
            matches.sort(key=lambda sf: (-sf[0], example_rank(sf[1].path), sf[1].path))
            return [f for _, f in matches[:limit]], len(matches), outside
    return [], 0, False


def human_size(size: int) -> str:
    """Bytes as B / KB / MB."""
    if size < 1024:
        return f"{size} B"
    return f"{size / 1024:.1f} KB" if size < 1024**2 else f"{size / 1024**2:.1f} MB"


async def similar_repos(api: GitHubApi, owner: str, name: str) -> str:
    """Why the repo was not found, with the most starred repositories of a similar name."""
    params = {"q": f"{name} in:name", "sort": "stars", "order": "desc", "per_page": SIMILAR_REPOS}
    try:
        found = await api.get("/search/repositories", "", params=params, missing_ok=True) or {}
    except ToolError:  # suggestions are a bonus: the search's own failure must not hide the 404
        found = {}
    private = "" if api.token else " A private repo also needs GITHUB_TOKEN."
    listing = f"List an owner's repos with github_list_repos(owner='{owner}')."
    lines = [f"Repository {owner}/{name} not found.{private} {listing}"]
    repos = [r for r in found.get("items") or [] if isinstance(r, dict) and r.get("full_name")]
    if repos:
        lines.append("Similar repositories by stars:")
        for n, repo in enumerate(repos[:SIMILAR_REPOS], 1):
            about = " ".join(str(repo.get("description") or "").split())[:80]
            lines.append(
                f"{n}. {repo['full_name']} ({repo.get('stargazers_count', 0):,} stars) {about}".rstrip()
            )
    return "\n".join(lines)


async def repo_files(api: GitHubApi, owner: str, name: str) -> tuple[str, list[RepoFile], bool]:
    """(default branch, every file of its tree, whether GitHub truncated the tree)."""
    repo = await api.get(repo_path(owner, name), "", missing_ok=True)
    if repo is None:
        raise ToolError(await similar_repos(api, owner, name))
    missing = f"Repository {owner}/{name} has no branch {repo.get('default_branch')}."
    branch = repo.get("default_branch") or "main"
    tree = await api.get(repo_path(owner, name, f"git/trees/{branch}"), missing, params={"recursive": "1"})
    files = [
        RepoFile(e["path"], int(e.get("size") or 0)) for e in tree.get("tree", []) if e.get("type") == "blob"
    ]
    return branch, files, bool(tree.get("truncated"))


async def find_examples(
    api: GitHubApi, repo: str, org: str, keyword: str, max_results: int, min_score: float = MIN_SCORE
) -> str:
    """The text answer of github_find_examples (`min_score`: 0-100, how closely a path must match)."""
    owner, name = split_repo(repo, org or "huggingface")
    branch, files, truncated = await repo_files(api, owner, name)
    keyword = keyword.strip()
    found, total, outside = pick_examples(files, keyword, max(1, min(max_results, 100)), min_score)
    about = f" matching '{keyword}'" if keyword else ""
    if not found:
        return (
            f"No example files{about} in {owner}/{name} ({len(files)} files searched). Try another keyword."
        )
    where = " (none in example directories; matches elsewhere in the repo)" if outside else ""
    lines = [f"Example files in {owner}/{name} (branch {branch}){about}: {len(found)} of {total}{where}", ""]
    lines += [f"{n}. {f.path} ({human_size(f.size)})" for n, f in enumerate(found, 1)]
    if truncated:
        lines.append("(GitHub truncated the file tree of this large repo; some files may be missing.)")
    lines += ["", f"Read one with github_read_file(repo='{owner}/{name}', path='<path>')."]
    return "\n".join(lines)
