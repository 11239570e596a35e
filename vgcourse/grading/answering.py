"""Calling a learner's answer: the part of a question that runs where the learner's code runs.

A :class:`Call` is what a grading kernel needs to test one question — the answer's name and how
to run it on a case — and nothing else: no reference answer, no comparison, no points. The
kernel imports only these (:mod:`vgcourse.grading.calls`); the rest of a question
(:class:`~vgcourse.grading.question.Question`) stays in the grader, and in the sandbox the
kernel cannot even read it.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from typing import Any, Callable

from torch import Tensor

from vgcourse.tools.notebook_format import QUESTION_ID, QUESTION_ID_RULE

Case = dict[str, Any]

NOT_ANSWERED = "not answered yet"


@dataclass(frozen=True)
class Call:
    """How to test the answer to one question.

    Attributes:
        id: the question's id, e.g. ``"ex01.sigmoid_derivative"``.
        answer_name: the name the learner's answer is defined under in the notebook.
        run: ``run(answer, case) -> output``: runs the learner's answer on one case and turns the
            result into plain data (tensors, numbers, strings, lists, dicts).
        answered_by: dotted names of course objects (``"vgcourse.activations.derivative"``) that
            answer the question by themselves: an answer that uses one does no work, and in a
            grading kernel they raise (:mod:`vgcourse.grading.lockdown`).
    """

    id: str
    answer_name: str
    run: Callable[[Any, Case], Any]
    answered_by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not QUESTION_ID.match(self.id):
            raise ValueError(f"question id {self.id!r} must look like {QUESTION_ID_RULE}")
        if not isinstance(self.answer_name, str) or not self.answer_name.isidentifier():
            raise ValueError(f"answer name of {self.id} must be a Python identifier, got {self.answer_name!r}")
        if not isinstance(self.answered_by, tuple):
            raise ValueError(f"answered_by of {self.id} must be a tuple of dotted names, got {self.answered_by!r}")
        for dotted in self.answered_by:
            if not isinstance(dotted, str) or not dotted.startswith("vgcourse.") or dotted.startswith(
                    "vgcourse.grading.") or not all(part.isidentifier() for part in dotted.split(".")):
                raise ValueError(f"answered_by of {self.id} must name course objects outside vgcourse.grading "
                                 f"like 'vgcourse.activations.derivative', got {dotted!r}")


def unknown_question(question_id: object, known: list[str]) -> ValueError:
    """The error for an id that is none of ``known``, suggesting the closest ones."""
    close = difflib.get_close_matches(str(question_id), known, n=3)
    suggestion = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    return ValueError(f"unknown question {question_id!r}{suggestion} (ids look like 'ex01.sigmoid_derivative')")


def call_outputs(call: Call, answer: Any, cases: list[Case]) -> list[dict[str, Any]]:
    """Run ``answer`` on every case; each entry is ``{"ok": output}`` or ``{"error": text}``.

    Exceptions from the learner's code are caught and described, never raised; a
    ``NotImplementedError`` (the exercise as handed out) is :data:`NOT_ANSWERED`.
    """
    outputs: list[dict[str, Any]] = []
    for case in cases:
        try:
            outputs.append({"ok": _plain(call.run(answer, copy.deepcopy(case)))})
        except NotImplementedError:
            outputs.append({"error": NOT_ANSWERED})
        except Exception as error:  # the learner's code may raise anything
            outputs.append({"error": f"{type(error).__name__}: {error}"})
    return outputs


def _plain(value: Any) -> Any:
    """``value`` with tensors detached, on the CPU and stripped of subclasses."""
    if isinstance(value, Tensor):
        return value.detach().cpu().as_subclass(Tensor).clone()
    if isinstance(value, (list, tuple)):  # named tuples and list subclasses become plain lists
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or type(value) in (bool, int, float, str):
        return value
    raise TypeError(f"the answer returned a {type(value).__name__}, which the checker cannot read")
