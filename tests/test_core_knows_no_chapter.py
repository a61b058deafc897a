"""The core (grader/ less grader/packs/) knows no chapter: it reaches chapter 01 only through
its pack (docs/packs.md). Read from the source: the core's code (its names and its string
literals, not its comments and docstrings, where the chapter's names serve as examples) uses
none of the chapter's vocabulary, which is read from the pack's own contract, so that a name a
pack adds is watched too."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

from grader.packs import (
    NoDefaultAssignment,
    Pack,
    default_assignment,
    pack_for,
    register,
    unregister,
)

GRADER = Path(__file__).resolve().parents[1] / "grader"
PACKS = GRADER / "packs"

# What chapter 01 chose, that no contract field names: its model and its training recipe.
RECIPE = {"LinearRegressionModel", "LinearRegression", "L1Loss", "SGD", "weights", "slope"}
# Words of the contract that are torch's or the record format's own, used by the core for
# any notebook: a tensor's `device`, a value of kind "optimizer", a check's `weight`, a
# snapshot's `data` ...; their chapter meaning is not what the core reads. And `X`, `y`: a
# chart's axes (grader/reports/svg.py).
GENERIC = {"data", "device", "optimizer", "weight", "epochs", "split", "predictions", "X", "y"}
# (module, word): where the core may say a word of the list, and why.
ALLOWED = {
    ("grader/sandbox/child/runner.py", "SGD"): (
        "one optimizer built before the fork imports torch._dynamo for every child; any "
        "optimizer would do, and the chapter's recipe is the pack's rehearsal"
    ),
    ("grader/sandbox/child/trace.py", "L1Loss"): (
        "the trace's table of torch's loss functions by module name: torch's vocabulary, "
        "for any notebook that trains"
    ),
}


def chapter_words() -> set[str]:
    pack = pack_for("01_pytorch_workflow_exercises")
    words = set(RECIPE)
    for assignment in pack.assignments:
        words.add(assignment.id)
        words.update(str(v) for v in vars(assignment).values() if isinstance(v, str))
        for section in assignment.sections:
            words.update((section.id, *section.names, *section.asked))
    return words - GENERIC


def _docstrings(tree: ast.AST) -> set[int]:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        node.body[0].value.lineno
        for node in ast.walk(tree)
        if isinstance(node, kinds)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def said(source: str, words: set[str]) -> set[str]:
    """The words the code uses: as a name (variable, attribute, argument), as a whole string
    literal, or (a distinctive one) as a word of one; not in comments, nor in docstrings."""
    docs = _docstrings(ast.parse(source))
    found = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NAME and token.string in words:
            found.add(token.string)
        elif token.type == tokenize.STRING and token.start[0] not in docs:
            text = ast.literal_eval(token.string) if token.string[:1] in "'\"" else ""
            inside = _words_of(token.string)
            found.update(w for w in words if w == text or (_distinctive(w) and w in inside))
    return found


def _distinctive(word: str) -> bool:
    """A word no sentence uses by chance (`X_train`, `L1Loss`, `SGD`), looked for inside string
    literals too; a plain word (`model`, `y`) counts only as a name or a whole string."""
    return len(word) > 1 and ("_" in word or not word.isalpha() or not word.islower())


def _words_of(text: str) -> set[str]:
    word, words = "", set()
    for char in text + " ":
        if char.isalnum() or char == "_":
            word += char
        else:
            words.add(word)
            word = ""
    return words


def test_the_finder_sees_names_and_strings_not_comments():
    words = {"X_train", "L1Loss", "model_1"}
    source = '"""`X_train` in a docstring."""\n# model_1 in a comment\nloss = nn.L1Loss()\n'
    assert said(source, words) == {"L1Loss"}
    assert said('name = "model_1"\n', words) == {"model_1"}
    assert said('text = "the model"\nkey = "model"\n', {"model"}) == {"model"}
    assert said('text = "the model"\n', {"model"}) == set()
    assert said('text = f"with `X_train` in it"\n', words) == {"X_train"}


def test_the_chapter_vocabulary_is_read_from_the_pack():
    words = chapter_words()
    assert {"01_pytorch_workflow_exercises", "X_train", "model_1", "training_loop"} <= words
    assert {"MODEL_SAVE_PATH", "loaded_model_preds", "L1Loss", "weights"} <= words


def test_no_core_module_uses_the_chapters_names():
    words = chapter_words()
    found, used = [], set()
    for path in sorted(GRADER.rglob("*.py")):
        if path.is_relative_to(PACKS):
            continue
        module = path.relative_to(GRADER.parent).as_posix()
        for word in sorted(said(path.read_text(encoding="utf-8"), words)):
            if (module, word) in ALLOWED:
                used.add((module, word))
            else:
                found.append(f"{module}: {word}")
    assert not found, "chapter 01's names in the core (move them into its pack):\n" + "\n".join(
        found
    )
    assert used == set(ALLOWED), f"allowed but no longer used: {set(ALLOWED) - used}"


def test_the_default_assignment_is_the_packs_and_two_defaults_are_refused(tmp_path):
    assert default_assignment() == "01_pytorch_workflow_exercises"
    other = pack_for("01_pytorch_workflow_exercises")
    rival = Pack(
        id="rival",
        assignments=other.assignments[:0] + (other.assignment("01_pytorch_workflow"),),
        checks_dir=tmp_path,
        default="01_pytorch_workflow",
    )
    register(rival)
    try:
        with pytest.raises(NoDefaultAssignment, match="--assignment"):
            default_assignment()
    finally:
        unregister("rival")
    assert default_assignment() == "01_pytorch_workflow_exercises"
