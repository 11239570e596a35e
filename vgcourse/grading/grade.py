"""The grade of one submission: its points per question, and a status saying how its run went."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vgcourse.grading.question import Result

STATUSES: dict[str, str] = {
    "ok": "every cell ran without an exception",
    "not attempted": "every cell ran, and every answer still raises NotImplementedError as handed out: "
                     "nothing was answered",
    "errors": "some cells raised exceptions; the other cells still ran and every question was graded",
    "timeout": "a cell, or testing an answer, ran past the per-cell time limit and was interrupted; "
               "the rest still ran and was graded, unless the cell ignored the interrupt "
               "(then the questions not graded yet score 0)",
    "overall timeout": "the notebook used up its total time limit; questions not graded by then score 0",
    "kernel died": "the kernel exited, crashed or stopped answering (os._exit, a segfault, killed by the "
                   "operating system); questions not graded by then score 0",
    "malformed": "not a readable notebook, or not recognisably one of the exercises; nothing was run",
    "grader error": "the grader itself failed (for example the kernel would not start): not the "
                    "learner's fault; fix the cause and grade again",
}
"""Every submission status, from least to most serious, with what it means."""


@dataclass
class SubmissionGrade:
    """The grade of one submission.

    Attributes:
        student: who submitted it (see :func:`student_name`).
        assignment: the exercise number it was graded as, or ``None`` if that is unknown.
        path: the submitted file (never modified).
        results: one :class:`~vgcourse.grading.question.Result` per question, in order.
        status: a key of :data:`STATUSES`.
        error: the reason for ``status`` in one line; empty when the status is ``ok``.
        problems: everything that went wrong while running the notebook, in order.
        seconds: wall-clock time spent grading it.
        seed: the seed of the random test cases (question ``i`` uses ``seed + i``).
    """

    student: str
    assignment: str | None
    path: Path
    results: list[Result] = field(default_factory=list)
    status: str = "ok"
    error: str = ""
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    seed: int = 0

    @property
    def total(self) -> int:
        return sum(result.points for result in self.results)

    @property
    def max_points(self) -> int:
        return sum(result.max_points for result in self.results)

    def note(self, status: str, reason: str) -> None:
        """Record a problem; the most serious status (first reason among equals) wins."""
        self.problems.append(reason)
        if list(STATUSES).index(status) > list(STATUSES).index(self.status):
            self.status, self.error = status, reason
