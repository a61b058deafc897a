"""Autograder for the PyTorch workflow exercises: `from grader import check; check("split")`."""

__all__ = ["assert_section", "check"]


def __getattr__(name: str):
    # Imported on first use: the grader's own processes (the warm worker above all) import this
    # package too, and need neither the in-notebook helpers nor nbformat.
    if name in __all__:
        from grader import inline

        return getattr(inline, name)
    raise AttributeError(f"module 'grader' has no attribute {name!r}")
