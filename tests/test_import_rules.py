"""The grader's import rules, read from its source: no cycles, and the child's code stays small.

Every import counts, at module level or inside a function (a deferred import is still a
dependency, only a later one), and under `if TYPE_CHECKING:` too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

GRADER = Path(__file__).resolve().parents[1] / "grader"

# What only the grader's own process runs: the reports, the batch and the command line, and the
# grader's half of the sandbox. Code that runs inside the sandbox must not pull any of it in.
GRADER_SIDE = (
    "grader.batch.folder",
    "grader.batch.task",
    "grader.checking.pytest_session",
    "grader.cli",
    "grader.integrations.course",
    "grader.batch.cluster",
    "grader.doctor",
    "grader.integrations.gradescope_bundle",
    "grader.grading",
    "grader.reports",
    "grader.sandbox.execution",
    "grader.sandbox.session",
    "grader.integrations.student_repos",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(GRADER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: set[str]) -> set[str]:
    """The grader modules `path` imports, anywhere in it."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in (
                node.names
            ):  # `from grader.batch import folder as batch` imports grader.batch.folder
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {module for module in found if module in modules and module != name}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(GRADER.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    return {module_name(path): imported(path, modules) for path in paths}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that returns to its start) for each group of modules that import
    each other, directly or through others."""
    found, done = [], set()
    for start in sorted(graph):
        path = _path_back(graph, start, start, [start], set())
        if path and not set(path) & done:
            found.append(path)
        done.update(path or [])
    return found


def _path_back(graph, start: str, here: str, path: list[str], seen: set[str]) -> list[str]:
    for following in sorted(graph[here]):
        if following == start:
            return [*path, start]
        if following not in seen:
            seen.add(following)
            found = _path_back(graph, start, following, [*path, following], seen)
            if found:
                return found
    return []


def child_entry_points() -> set[str]:
    """The modules the sandbox starts (`python -m grader.<name>` in the grader's source)."""
    found = set()
    for path in GRADER.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        found.update(re.findall(r'"-m",\s*"(grader\.[\w.]+)"', text))
    return found


def reachable(graph: dict[str, set[str]], starts: set[str]) -> dict[str, list[str]]:
    """{module: the chain of imports that brings it in} for everything `starts` imports."""
    chains = {start: [start] for start in starts}
    todo = sorted(starts)
    while todo:
        here = todo.pop()
        for following in sorted(graph[here]):
            if following not in chains:
                chains[following] = [*chains[here], following]
                todo.append(following)
    return chains


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert (
        "grader.sandbox.child.runner" in graph["grader.sandbox.warm"]
    )  # a deferred import, inside a function
    assert "grader.sandbox.channel" in graph["grader.sandbox.session"]  # at module level
    assert "grader.inline" in graph["grader"]  # `from grader import inline`
    assert "grader.reports.html" in graph["grader.batch.task"]  # from grader.reports import html


def test_the_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "modules that import each other:\n" + "\n".join(
        " -> ".join(cycle) for cycle in found
    )


def test_the_sandbox_is_started_by_the_warm_worker():
    assert child_entry_points() == {"grader.sandbox.warm"}


def test_the_childs_code_imports_nothing_of_the_grader_side():
    chains = reachable(import_graph(), child_entry_points())
    assert "grader.sandbox.child.runner" in chains  # the notebook's own cells run there
    wrong = [
        chain
        for module, chain in sorted(chains.items())
        if any(module == side or module.startswith(side + ".") for side in GRADER_SIDE)
    ]
    assert not wrong, "the sandbox's code imports the grader's side:\n" + "\n".join(
        " -> ".join(chain) for chain in wrong
    )


PACK = "grader.packs.workflow01"  # chapter 01: the core reaches it only through grader.packs


def test_no_core_module_imports_a_pack():
    graph = import_graph()
    wrong = [
        f"{module} -> {target}"
        for module, targets in sorted(graph.items())
        if not (module == PACK or module.startswith(PACK + "."))
        for target in sorted(targets)
        if target == PACK or target.startswith(PACK + ".")
    ]
    assert not wrong, "core modules that import the chapter's pack:\n" + "\n".join(wrong)


def test_the_registry_names_the_builtin_pack():
    from grader.packs import BUILTIN, all_packs

    assert f"{PACK}:PACK" in BUILTIN
    assert "workflow01" in [pack.id for pack in all_packs()]


def test_the_packs_checks_import_only_the_check_api_and_their_own_pack():
    graph = import_graph()
    checks = [module for module in graph if module.startswith(PACK + ".checks.")]
    assert checks  # the chapter's test_*.py are found
    wrong = [
        f"{module} -> {target}"
        for module in sorted(checks)
        for target in sorted(graph[module])
        if target != "grader.check_api" and not target.startswith(PACK)
    ]
    assert not wrong, "checks that import the core directly:\n" + "\n".join(wrong)
