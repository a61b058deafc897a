"""Run a submission apart: the grader's half of the sandbox (the warm worker, the
confinement, the limits, the record channel). The code that runs inside the submission's
process is in `child/`."""
