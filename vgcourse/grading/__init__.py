"""Graded exercises: the questions, instant feedback with ``check()``, and the batch grader.

In an exercise notebook::

    from vgcourse.grading import check
    check("ex01.sigmoid_derivative", sigmoid_derivative)

Modules, engine first: ``answering`` (a question's ``Call``: how a learner's answer is found and
run, all a grading kernel gets of it), ``calls`` (every question's ``Call``, ``calls.ex01`` …
``calls.ex10``), ``question`` (a question — its ``Call`` plus random cases, the reference and the
comparison — and how answers are scored, including a ``Passed(note)`` a comparison may return),
``cases`` (random inputs), ``registry`` (every question of ``questions.ex01`` … ``questions.ex10``
by id: the references, which a grading kernel cannot see), ``check`` (feedback in the notebook),
``kernel`` (the part that runs in a submission's kernel), ``lockdown`` (what that kernel shuts
before the learner's code runs), ``answer_cells`` (the code of a submission it runs),
``sandbox`` (bubblewrap around it), ``runner`` (one fresh, limited kernel), ``files`` (no-follow
reads and atomic writes),
``grade`` (a submission's grade and statuses), ``submission_file`` (reading a submitted file and
telling which exercise it is), ``submission`` (grading one notebook), ``batch`` (grading many),
``report`` (the CSV and feedback files), ``statistics`` (per-question statistics, the grade book)
and ``command`` (``vgcourse grade``). The notebook format they read is
:mod:`vgcourse.tools.notebook_format`.
"""

from vgcourse.grading.check import check, run_question
from vgcourse.grading.registry import ASSIGNMENTS, QUESTIONS, assignment_questions, get_question

__all__ = ["ASSIGNMENTS", "QUESTIONS", "assignment_questions", "check", "get_question", "run_question"]
