"""The graded checks, one pytest module per section; run by grader.checking on a record."""
