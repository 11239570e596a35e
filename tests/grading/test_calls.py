"""vgcourse.grading.calls: every question's kernel side, usable with the reference answers gone."""

import ast
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
import torch

import vgcourse
from vgcourse.grading import QUESTIONS
from vgcourse.grading.calls import CALLS, get_call
from vgcourse.grading.lockdown import resolve
from vgcourse.grading.question import public_case, score
from vgcourse.tools.notebook_format import cell_question

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


def test_every_question_has_its_call_and_no_call_is_left_over():
    assert list(CALLS) == list(QUESTIONS)
    assert all(QUESTIONS[qid].answer is get_call(qid) for qid in CALLS)
    with pytest.raises(ValueError, match="did you mean 'ex01.tanh_derivative'"):
        get_call("ex01.tanh_derivativ")


def test_answered_by_names_course_objects_the_solutions_do_not_use():
    named = [(qid, dotted) for qid, call in CALLS.items() for dotted in call.answered_by]
    assert len(named) >= 8
    for qid, dotted in named:
        target = resolve(dotted)
        assert callable(target) and (isinstance(target, type) or hasattr(target, "__code__")), dotted
        (path,) = SOLUTIONS.glob(f"{qid[2:4]}_*.ipynb")
        answers = [ast.parse(c.source) for c in nbformat.read(path, as_version=4).cells if cell_question(c)]
        assert not any(dotted in _course_names(tree) for tree in answers), (qid, dotted)


def _course_names(tree: ast.Module) -> set[str]:
    """The dotted names an answer cell imports from the course or reaches as attributes."""
    names = {f"{node.module}.{alias.name}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
             for alias in node.names}
    return names | {ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}


KERNEL_SIDE = """\
import sys, torch
from pathlib import Path
import nbformat
from vgcourse.grading.answer_cells import graded_cells
from vgcourse.grading.answering import call_outputs
from vgcourse.grading.calls import CALLS
folder = Path(sys.argv[1])
solutions = {}
for qid, call in CALLS.items():
    if qid == "ex10.fix":
        continue  # scored by training the set-up three times: tests/grading/questions/test_ex10.py
    number = qid[2:4]
    if number not in solutions:
        (path,) = Path(sys.argv[2]).glob(f"{number}_*.ipynb")
        ids = [c for c in CALLS if c[2:4] == number]
        namespace = {}
        for cell in graded_cells(nbformat.read(path, as_version=4), ids, [CALLS[c].answer_name for c in ids]):
            exec(compile(cell.source, cell.where, "exec"), namespace)
        solutions[number] = namespace
    cases = torch.load(folder / f"{qid}.cases.pt", weights_only=True)
    torch.save(call_outputs(call, solutions[number][call.answer_name], cases), folder / f"{qid}.outputs.pt")
leaked = sorted(m for m in sys.modules if m.startswith("vgcourse.grading.questions."))
assert not leaked, leaked
"""


def test_with_the_reference_answers_gone_the_calls_still_run_every_solution(tmp_path):
    """The kernel's view of the package — ``grading/questions`` empty, as in the sandbox — runs
    each solution's imports and answer cells on the grader's cases; the grader scores them."""
    package = tmp_path / "site" / "vgcourse"
    shutil.copytree(Path(vgcourse.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    for module in (package / "grading" / "questions").glob("ex*.py"):
        module.unlink()
    cases = {}
    for qid, question in QUESTIONS.items():
        if qid == "ex10.fix":
            continue  # see KERNEL_SIDE
        cases[qid] = question.cases(torch.Generator().manual_seed(7))
        torch.save([public_case(question, case) for case in cases[qid]], tmp_path / f"{qid}.cases.pt")
    done = subprocess.run([sys.executable, "-c", KERNEL_SIDE, str(tmp_path), str(SOLUTIONS)], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path, env={"PYTHONPATH": str(package.parent),
                                                                     "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    for qid, question_cases in cases.items():
        outputs = torch.load(tmp_path / f"{qid}.outputs.pt", weights_only=True)
        result = score(QUESTIONS[qid], question_cases, outputs)
        assert result.passed, result.message
