"""Every graded question of exercises 02-12: the solutions pass, unanswered questions and answers
that raise say so and score 0, hard-coded answers fail, and the cases travel between processes
(``torch.save`` / ``torch.load(weights_only=True)``) and change from seed to seed. What is
particular to one question is in test_exNN.py."""

from __future__ import annotations

import nbformat
import pytest
import torch
from fixtures.question_answers import SEEDS, answer_of, failure, round_trip, run_cells, same, solution, solution_path

from vgcourse.grading import QUESTIONS, assignment_questions, get_question, run_question
from vgcourse.grading.answering import call_outputs
from vgcourse.grading.question import score
from vgcourse.tools.exercise import make_exercise

EARLY = ("02", "03", "04", "05")  # checked on the solution notebooks run top to bottom
IDS = [qid for qid in QUESTIONS if qid[2:4] in EARLY]
POINTS = {
    "ex06.batchnorm_forward": 3, "ex06.scale_factors": 2,
    "ex07.residual_block": 3, "ex07.residual_jacobian": 2, "ex07.residual_growth": 2,
    "ex08.rnn_states": 2, "ex08.hidden_jacobian_norm": 3, "ex08.forget_path_factor": 2,
    "ex09.clip_by_norm": 3, "ex09.clip_by_value": 2, "ex09.gradient_growth": 2,
    "ex10.diagnose": 4, "ex10.fix": 4,
    "ex11.isometry_gain": 2, "ex11.singular_values": 2, "ex11.lsuv": 2,
    "ex12.pre_ln_block": 3, "ex12.zero_branch": 2, "ex12.layer_norm_gain": 2,
}
FAST = [qid for qid in POINTS if not qid.startswith("ex10.")]  # no training inside the check


def test_the_questions_of_02_to_05_are_registered_with_their_points():
    points = {qid: QUESTIONS[qid].points for qid in IDS}
    assert points == {
        "ex02.depth_bound": 1, "ex02.predicted_factor": 2, "ex02.saturated_fraction": 2,
        "ex03.hook": 3, "ex03.stalled": 2, "ex03.read_the_plot": 1,
        "ex04.leaky_relu_gain": 2, "ex04.dead_fraction": 2,
        "ex05.init_std": 2, "ex05.init_linear": 2, "ex05.layer_gain": 2,
    }


@pytest.mark.parametrize("assignment", EARLY)
def test_answer_cells_match_the_questions(assignment):
    nb = nbformat.read(solution_path(assignment), as_version=4)
    graded = [cell for cell in nb.cells if "vgcourse" in cell.metadata]
    meta = [(cell.metadata["vgcourse"]["question"], cell.metadata["vgcourse"]["points"]) for cell in graded]
    assert meta == [(q.id, q.points) for q in assignment_questions(assignment)]
    for cell, question in zip(graded, assignment_questions(assignment)):
        assert f"def {question.answer_name}(" in cell.source.split("### BEGIN SOLUTION")[0]
    checks = [cell.source for cell in nb.cells if cell.cell_type == "code" and "check(" in cell.source]
    assert checks == [f'check("{q.id}", {q.answer_name})' for q in assignment_questions(assignment)]


@pytest.mark.parametrize("qid", IDS)
def test_solution_passes_on_several_seeds(solved, qid):
    for seed in SEEDS:
        result = run_question(qid, answer_of(solved, qid), seed=seed)
        assert result.passed, result.message


@pytest.mark.parametrize("qid", IDS)
def test_unanswered_question_says_so_and_scores_zero(qid):
    def stub(*args, **kwargs):
        raise NotImplementedError(f"{qid}: replace this line with your answer")

    result = run_question(qid, stub, seed=0)
    assert result.points == 0 and "not answered yet" in result.message


@pytest.mark.parametrize("qid", IDS)
def test_an_answer_that_raises_is_reported_not_raised(qid):
    def broken(*args, **kwargs):
        raise KeyError("oops")

    result = run_question(qid, broken, seed=0)
    assert result.points == 0 and "KeyError" in result.message and "on " in result.message


@pytest.mark.parametrize("qid", IDS)
def test_cases_survive_weights_only_round_trip_and_change_with_the_seed(solved, qid, tmp_path):
    question = QUESTIONS[qid]
    cases = question.cases(torch.Generator().manual_seed(0))
    torch.save(cases, tmp_path / "cases.pt")
    loaded = torch.load(tmp_path / "cases.pt", weights_only=True)
    assert same(loaded, cases)
    # The batch grader's path: outputs computed in the kernel, saved, loaded and scored elsewhere.
    torch.save(call_outputs(question.answer, answer_of(solved, qid), loaded), tmp_path / "outputs.pt")
    outputs = torch.load(tmp_path / "outputs.pt", weights_only=True)
    assert score(question, cases, outputs).passed
    assert not same(cases, question.cases(torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("qid", [qid for qid in IDS if qid != "ex05.init_linear"])  # returns nothing
def test_an_answer_hard_coded_from_one_run_fails_the_next(solved, qid):
    question = QUESTIONS[qid]
    cases = question.cases(torch.Generator().manual_seed(0))
    remembered = call_outputs(question.answer, answer_of(solved, qid), cases)[0]["ok"]
    if qid == "ex03.hook":
        remembered = remembered["norms"]
    assert "✗" in failure(qid, lambda *args, **kwargs: remembered, seeds=(1, 2, 3))


def test_the_untouched_exercises_run_top_to_bottom_and_report_not_answered():
    for assignment in EARLY:
        path = solution_path(assignment)
        exercise = make_exercise(nbformat.read(path, as_version=4), path.name)
        _, printed = run_cells(exercise)
        lines = [line for line in printed.splitlines() if line.startswith(("✓", "✗"))]
        assert len(lines) == len(assignment_questions(assignment)), printed
        assert all("not answered yet" in line for line in lines), printed


# ---- exercises 06-10 -------------------------------------------------------------------------


def test_questions_are_registered_with_their_points():
    for question_id, points in POINTS.items():
        question = get_question(question_id)
        assert question.points == points
        cell_points = {c.metadata["vgcourse"]["question"]: c.metadata["vgcourse"]["points"]
                       for c in nbformat.read(solution_path(question.assignment), as_version=4).cells
                       if "question" in c.metadata.get("vgcourse", {})}
        assert cell_points[question_id] == points


@pytest.mark.parametrize("question_id", FAST)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_solution_passes(question_id, seed):
    result = run_question(question_id, solution(question_id), seed=seed)
    assert result.passed, result.message
    assert result.message.startswith(f"✓ {question_id}")


@pytest.mark.parametrize("question_id", list(POINTS))
def test_stub_is_not_answered_yet(question_id):
    def stub(*args, **kwargs):
        raise NotImplementedError(f"{question_id}: replace this line with your answer")

    result = run_question(question_id, stub, seed=0)
    assert result.points == 0 and "not answered yet" in result.message


@pytest.mark.parametrize("question_id", list(POINTS))
def test_cases_round_trip_and_differ_between_seeds(question_id):
    question = get_question(question_id)
    cases = question.cases(torch.Generator().manual_seed(0))
    assert same(cases, round_trip(cases))
    assert not same(cases, question.cases(torch.Generator().manual_seed(1)))
    assert same(cases, question.cases(torch.Generator().manual_seed(0)))  # repeatable for one seed


@pytest.mark.parametrize("question_id", FAST + ["ex10.fix"])
def test_solution_outputs_round_trip_and_score(question_id):
    question = get_question(question_id)
    cases = round_trip(question.cases(torch.Generator().manual_seed(7)))
    outputs = round_trip(call_outputs(question.answer, solution(question_id), cases))
    assert all("ok" in output for output in outputs), outputs
    if question_id != "ex10.fix":  # its comparison trains; test_fix_solution_passes covers it
        assert score(question, cases, outputs).passed
