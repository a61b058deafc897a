"""Autograder for the PyTorch workflow exercises: `from grader import check; check("split")`."""

from grader.inline import assert_section, check

__all__ = ["assert_section", "check"]
