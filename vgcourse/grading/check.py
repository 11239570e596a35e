"""Instant feedback in the learner's notebook: ``check("ex01.sigmoid_derivative", sigmoid_derivative)``."""

from __future__ import annotations

import secrets
import sys
from typing import Any

import torch

from vgcourse.grading.answering import call_outputs
from vgcourse.grading.question import Question, Result, score
from vgcourse.grading.registry import get_question

_FROM_NOTEBOOK = object()


def run_question(question: Question | str, answer: Any, seed: int | None = None) -> Result:
    """Test ``answer`` on fresh randomized cases of ``question`` in this process.

    Args:
        question: a :class:`Question` or its id.
        answer: the learner's function (or class) to test.
        seed: seed for the random cases; default a fresh random one, so answers that
            hard-code one run's values fail the next.
    """
    question = get_question(question) if isinstance(question, str) else question
    generator = torch.Generator().manual_seed(secrets.randbits(63) if seed is None else seed)
    cases = question.cases(generator)
    return score(question, cases, call_outputs(question.answer, answer, cases))


def check(question_id: str, answer: Any = _FROM_NOTEBOOK) -> None:
    """Test the answer to ``question_id`` and print a pass/fail line with a hint.

    ``answer`` defaults to the notebook's variable of the question's answer name. A wrong
    answer (even one that raises) is reported, never raised.
    """
    try:
        question = get_question(question_id)
    except ValueError as error:
        print(f"✗ {error}")
        return
    if answer is _FROM_NOTEBOOK:
        caller = sys._getframe(1).f_globals
        if question.answer_name not in caller:
            print(f"✗ {question.id}: `{question.answer_name}` is not defined yet — run the cell that defines it.")
            return
        answer = caller[question.answer_name]
    print(run_question(question, answer).message)
