"""Runs inside the submission's process (forked from the warm worker): the
cells, the trace of torch, the snapshots, the simulated GPU, the saved-file reader. Nothing
here may import the grader's own side (tests/test_import_rules.py)."""
