"""Hidden checks: run by `ptgrade grade` where solutions/ is present, never shipped to students."""

from grader.checking.plugin import check
from grader.packs.workflow01.outcome import judge_training


@check("training_loop", "final_parameters", weight=2, hidden=True)
def test_final_parameters_match_the_replay(record, assignment):
    """The grader's replay of the training (grader/packs/workflow01/outcome.py), counted again in the grade."""
    judge_training(record, assignment)
