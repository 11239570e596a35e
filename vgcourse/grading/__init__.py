"""Graded exercises: the questions, instant feedback with ``check()``, and the batch grader.

In an exercise notebook::

    from vgcourse.grading import check
    check("ex01.sigmoid_derivative", sigmoid_derivative)

Modules: ``question`` (what a question is and how answers are scored), ``cases`` (random
inputs), ``ex01`` … ``ex10`` (the questions of each exercise), ``registry`` (all of them by id),
``check`` (feedback in the notebook), ``kernel`` (the part that runs in a submission's kernel),
``runner`` (one fresh, limited kernel), ``submission`` (grading one notebook) and ``batch``
(``vgcourse grade``: many notebooks, the CSV and the feedback).
"""

from vgcourse.grading.check import check, run_question
from vgcourse.grading.registry import ASSIGNMENTS, QUESTIONS, assignment_questions, get_question

__all__ = ["ASSIGNMENTS", "QUESTIONS", "assignment_questions", "check", "get_question", "run_question"]
