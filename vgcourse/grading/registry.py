"""Every graded question of the course, by id and by exercise number."""

from __future__ import annotations

import importlib
import pkgutil
import re

from pathlib import Path

from vgcourse.grading.answering import unknown_question
from vgcourse.grading.question import Question

QUESTIONS_FOLDER = Path(__file__).resolve().parent / "questions"
"""Where the questions and their reference answers are: the folder a grading kernel sees empty."""

EXERCISE_MODULES: tuple[str, ...] = tuple(sorted(
    info.name for info in pkgutil.iter_modules([str(QUESTIONS_FOLDER)])
    if re.fullmatch(r"ex\d\d", info.name)
))
"""One module per exercise notebook (``ex01`` … ``ex10``), each defining ``QUESTIONS``."""


def _collect() -> dict[str, Question]:
    questions: dict[str, Question] = {}
    for name in EXERCISE_MODULES:
        module = importlib.import_module(f"vgcourse.grading.questions.{name}")
        for question in module.QUESTIONS:
            if question.id in questions:
                raise ValueError(f"question id {question.id!r} is defined twice")
            if question.assignment != name[2:]:
                raise ValueError(f"question {question.id!r} belongs in ex{question.assignment}, not {name}")
            questions[question.id] = question
    return questions


QUESTIONS: dict[str, Question] = _collect()
"""All questions, in course order."""

ASSIGNMENTS: tuple[str, ...] = tuple(sorted({q.assignment for q in QUESTIONS.values()}))
"""The exercise numbers that have graded questions, e.g. ``("01", "02", ...)``."""


def get_question(question_id: str) -> Question:
    """The question called ``question_id``.

    Raises:
        ValueError: for an unknown id, suggesting the closest known ones.
    """
    if isinstance(question_id, str) and question_id in QUESTIONS:
        return QUESTIONS[question_id]
    raise unknown_question(question_id, list(QUESTIONS))


def assignment_questions(assignment: str) -> list[Question]:
    """The questions of exercise ``assignment`` (``"01"`` … ``"10"``), in order.

    Raises:
        ValueError: if ``assignment`` is not an exercise number with questions.
    """
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"unknown exercise {assignment!r}; choose one of {list(ASSIGNMENTS)}")
    return [q for q in QUESTIONS.values() if q.assignment == assignment]
