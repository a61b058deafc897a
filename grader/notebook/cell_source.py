"""Read a cell's source as Python does, without running it: what the grader's messages say about
the student's own lines (a name made below its use, a method named without `()`, ...)."""

from __future__ import annotations

import ast
from collections.abc import Iterator

# A function's, a class's or a comprehension's body is a scope of its own: a name made there is
# not made by the cell.
NEW_SCOPES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Lambda,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)


def parse(source: str) -> ast.AST | None:
    """The cell's syntax tree, line magics (`%matplotlib inline`) read as the calls IPython
    makes of them; None where it cannot be read (a syntax error, a cell too deep to parse)."""
    try:
        return ast.parse(source)
    except SyntaxError:
        pass
    except Exception:
        return None
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return ast.parse(TransformerManager().transform_cell(source))
    except Exception:
        return None


def cell_scope(tree: ast.AST) -> Iterator[ast.AST]:
    """The nodes of the cell's own scope: a `def` or `class` is kept, its body not entered."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if node is tree or not isinstance(node, NEW_SCOPES):
            stack.extend(ast.iter_child_nodes(node))


def names_made(source: str) -> dict[str, int]:
    """Each name the cell itself makes (an assignment, a loop variable, a `def`, a `class`, an
    import), with the first line that makes it."""
    tree = parse(source)
    made: dict[str, int] = {}
    for node in cell_scope(tree) if tree is not None else ():
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            name = node.id
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = node.name
        elif isinstance(node, ast.alias):
            name = (node.asname or node.name).split(".")[0]
        else:
            continue
        made[name] = min(made.get(name, node.lineno), node.lineno)
    return made


def code_lines(source: str) -> list[str]:
    """The lines that are code: not blank, not comments (a trailing comment cut off)."""
    lines = [line.split("#", 1)[0].rstrip() for line in source.splitlines()]
    return [line for line in lines if line.strip()]


def is_cell_file(filename: str) -> bool:
    """Whether code with this file name was compiled from a notebook cell (IPython's names)."""
    return filename.startswith("<ipython-input") or "ipykernel" in filename


def appends_to(source: str, name: str) -> tuple[int, str] | None:
    """The first line of the cell that appends to the list `name` (`name.append(...)`, or
    `name += [...]`), and that line's code, to point a student at their own line."""
    tree = parse(source)
    if tree is None:
        return None
    found = []
    for node in ast.walk(tree):
        call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        if call and node.func.attr in ("append", "extend"):
            target = node.func.value
        elif isinstance(node, ast.AugAssign):
            target = node.target
        else:
            continue
        if isinstance(target, ast.Name) and target.id == name:
            found.append(node.lineno)
    if not found:
        return None
    line = min(found)
    return line, source.splitlines()[line - 1].strip()


def assigned_lines(source: str, name: str) -> list[int]:
    """The lines of the cell that assign `name` (`name = ...`, `name, other = ...`)."""
    tree = parse(source)
    if tree is None:
        return []
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        for found in ast.walk(target)
        if isinstance(found, ast.Name) and found.id == name
    ]
