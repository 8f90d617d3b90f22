"""The house rules a newcomer relies on: no import cycles inside `ml_intern`, `graph/` holds only the graph,
no module over 250 lines, every library the package imports is declared, tests share helpers only through
`tests/harness*.py` and `tests/fakes/`, and no test, bench or CI file names a path of one machine."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections import deque
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

from tests.harness import REPO_ROOT

PACKAGE = REPO_ROOT / "ml_intern"
MAX_MODULE_LINES = 250
# Uploaded alone into a sandbox Space and run there with the standard library only: one file by design.
ONE_FILE_MODULES = {"ml_intern.tools.sandbox.server"}
GRAPH_MODULES = {  # ml_intern/graph/: the state, how it is built and routed, and what nodes share
    "__init__",
    "state",  # the state TypedDict and its reducers
    "context",  # the run context nodes receive
    "builder",  # nodes and edges
    "routing",  # pure routers
    "messages",  # message conventions (markers, user turns)
    "loops",  # doom-loop and stall detection
    "accounting",  # usage and cost of model calls
    "budget",  # split out of accounting: the per-turn budget check
    "events",  # one constructor per event type
    "turns",  # the graph inputs that start or continue a turn
}
CHECKED_DIRS = ("tests", "bench", ".ci")  # what must run on any machine, from any checkout
MACHINE_ROOTS = ("root", "home", "Users", "work")  # top directories that name one machine or user
SHARED_PLACES = {"/", "/usr", "/usr/local"}  # an interpreter's prefix there names no one machine
SHARED_TEST_MODULES = re.compile(r"tests\.(harness\w*|fakes|netguard)(\.|$)")  # what tests may import
PATH_TOKEN = re.compile(r"(?<![\w.~$:/\-])/[\w.\-]+(?:/[\w.\-{}]*)*")  # "/a/b", not in URLs or ~/ or $X/


# ---- (a) import cycles -------------------------------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, in functions too; the body of `if TYPE_CHECKING:` is skipped."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif isinstance(child, ast.If) and is_type_checking(child.test):
            for branch in child.orelse:
                yield from import_nodes(branch)
        else:
            yield from import_nodes(child)


def known_module(dotted: str) -> str | None:
    """`dotted` or its longest prefix that is one of our modules."""
    while dotted and dotted not in MODULES:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def imports_of(name: str) -> set[str]:
    """Our modules that module `name` imports (relative imports resolved, `from pkg import submodule` too)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str | None] = set()
    for node in import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(known_module(alias.name) for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, *([node.module] if node.module else [])])
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            found.add(submodule if submodule in MODULES else known_module(base))
    return {module for module in found if module and module != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan), as a path back to its start."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [path_back(graph, group[0], set(group)) for group in groups]


def path_back(graph: dict[str, set[str]], start: str, within: set[str]) -> list[str]:
    """The shortest import path from `start` back to itself through the modules `within` (breadth first)."""
    came_from: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in sorted(graph[node] & within):
            if target == start:
                path = [node]
                while (previous := came_from[path[-1]]) is not None:
                    path.append(previous)
                return [*reversed(path), start]
            if target not in came_from:
                came_from[target] = node
                queue.append(target)
    return [start]


def test_no_import_cycles_inside_the_package() -> None:
    graph = {name: imports_of(name) for name in MODULES}
    found = [" -> ".join(cycle) for cycle in cycles(graph)]
    assert found == [], "import cycles (lazy imports in functions count):\n" + "\n".join(found)


# ---- (b) graph/ holds only the graph, (c) module size -----------------------------------------------------


def test_the_graph_package_holds_only_the_graph() -> None:
    present = {path.stem for path in (PACKAGE / "graph").glob("*.py")}
    assert present - GRAPH_MODULES == set(), "not graph modules: move them out of ml_intern/graph/"


def test_no_module_is_over_250_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    too_long = {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES}
    assert {name: lines for name, lines in too_long.items() if name not in ONE_FILE_MODULES} == {}


# ---- (d) every library the package imports is declared ---------------------------------------------------


def distribution_key(name: str) -> str:
    """A distribution name as pip compares them: `Python_Dotenv` and `python-dotenv` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_distributions() -> set[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return {distribution_key(re.match(r"[\w.\-]+", spec).group()) for spec in project["dependencies"]}


def absolute_imports(path: Path) -> list[str]:
    """The dotted names a file imports (`from a import b` gives `a.b`); relative imports are left out."""
    names = []
    for node in import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif node.module and not node.level:
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def imported_libraries() -> set[str]:
    """Top-level names of what `ml_intern` imports that is neither the standard library nor itself."""
    names = {name.partition(".")[0] for path in MODULES.values() for name in absolute_imports(path)}
    return names - set(sys.stdlib_module_names) - {"ml_intern"}


def test_every_imported_library_is_declared_in_pyproject() -> None:
    providers = packages_distributions()
    declared = declared_distributions()
    undeclared = {
        name: providers.get(name, ["(not installed)"])
        for name in sorted(imported_libraries())
        if not declared & {distribution_key(dist) for dist in providers.get(name, [])}
    }
    assert undeclared == {}, "add these to [project] dependencies in pyproject.toml"


# ---- (e) no path of one machine in what must run anywhere -------------------------------------------------


def checked_files() -> list[Path]:
    files = [path for folder in CHECKED_DIRS for path in (REPO_ROOT / folder).rglob("*") if path.is_file()]
    return [path for path in files if "__pycache__" not in path.parts]


def machine_paths(text: str) -> list[str]:
    """Absolute paths in `text` that belong to one machine: this checkout, its interpreter, the home
    directory, or anything under a top directory such as home or root (MACHINE_ROOTS)."""
    this_machine = {str(REPO_ROOT), sys.prefix, sys.base_prefix, str(Path.home())} - SHARED_PLACES
    found = [place for place in this_machine if re.search(re.escape(place) + r"(?![\w.\-])", text)]
    return found + [token for token in PATH_TOKEN.findall(text) if token.split("/")[1] in MACHINE_ROOTS]


def tmp_literals(path: Path) -> list[str]:
    """String literals that are a path under /tmp: a test's files belong in its own `tmp_path`."""
    if path.suffix != ".py":
        return [t for t in PATH_TOKEN.findall(path.read_text(errors="replace")) if t.split("/")[1] == "tmp"]
    tree = ast.parse(path.read_text(), str(path))
    literals = [
        n.value.strip() for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]
    return [value for value in literals if re.fullmatch(r"/tmp(/\S*)?", value)]


def test_no_test_bench_or_ci_file_names_a_path_outside_the_repository() -> None:
    found = {}
    for path in checked_files():
        text = path.read_text(errors="replace")
        paths = machine_paths(text) + tmp_literals(path)
        if paths:
            found[str(path.relative_to(REPO_ROOT))] = sorted(set(paths))
    assert found == {}, "use REPO_ROOT, tmp_path or `installed_cli()` (tests/harness.py) instead"


# ---- (f) tests share helpers through the harness, never through another test file --------------------------


def test_no_test_or_bench_file_imports_a_test_file() -> None:
    found = {}
    for path in [*(REPO_ROOT / "tests").rglob("*.py"), *(REPO_ROOT / "bench").rglob("*.py")]:
        ours = [name for name in absolute_imports(path) if name.startswith("tests.")]
        if wrong := [name for name in ours if not SHARED_TEST_MODULES.match(name)]:
            found[str(path.relative_to(REPO_ROOT))] = wrong
    assert found == {}, "move shared helpers to tests/harness*.py (fixtures to tests/conftest.py)"
