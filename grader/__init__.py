"""Autograder for the PyTorch workflow exercises: `from grader import check; check("split")`."""

import sys

__all__ = ["assert_section", "check"]

# nbformat imports jsonschema, which loads rfc3987_syntax when it is installed (nbgrader's
# jupyter-events pulls it in); that module builds a parser at import, 0.75 s of every ptgrade
# process's start-up (measured: `import nbformat` 1.0 s -> 0.16 s without it). It only checks the
# "iri" string format, which no notebook schema uses. Left alone where jsonschema is already
# loaded (nbgrader's own process), so nothing that already had it loses it.
if "jsonschema" not in sys.modules:
    sys.modules.setdefault("rfc3987_syntax", None)  # None: "import rfc3987_syntax" fails


def __getattr__(name: str):
    # Imported on first use: the grader's own processes (the warm worker above all) import this
    # package too, and need neither the in-notebook helpers nor nbformat.
    if name in __all__:
        from grader import inline

        return getattr(inline, name)
    raise AttributeError(f"module 'grader' has no attribute {name!r}")
