"""The graded checks, one pytest module per section; run by grader.checking.pytest_session on a record."""
