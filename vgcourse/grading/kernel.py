"""The one piece of grading that runs inside a submission's kernel.

The batch grader writes a question's cases to a file and asks the kernel to run
:func:`answer_cases`, which only calls the learner's answer (the question's
:class:`~vgcourse.grading.answering.Call`) and saves the raw outputs. Whether they are right is
decided back in the grader's process (:func:`~vgcourse.grading.question.score`); nothing this
module imports holds a reference answer.
"""

from __future__ import annotations

from typing import Any

import torch

from vgcourse.grading.answering import call_outputs
from vgcourse.grading.calls import get_call

MISSING = "missing"


def answer_cases(question_id: str, namespace: dict[str, Any], cases_path: str, outputs_path: str) -> None:
    """Run the answer to ``question_id`` found in ``namespace`` on the saved cases; save its outputs.

    Saves ``{"outputs": [...]}``, or ``{"missing": name}`` when the notebook never defined the answer.
    """
    call = get_call(question_id)
    cases = torch.load(cases_path, weights_only=True)
    if call.answer_name not in namespace:
        result: dict[str, Any] = {MISSING: call.answer_name}
    else:
        result = {"outputs": call_outputs(call, namespace[call.answer_name], cases)}
    torch.save(result, outputs_path)
