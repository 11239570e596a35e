"""Exercise 08, backpropagation through time: how a grading kernel calls the answers (no reference answers here)."""

from __future__ import annotations

from typing import Any

from vgcourse.grading.answering import Call, Case


ARGUMENTS = ("w_xh", "w_hh", "b", "xs", "h0")


def _call(answer: Any, case: Case) -> Any:
    return answer(*(case[name] for name in ARGUMENTS))


RNN_STATES = Call(
    id="ex08.rnn_states",
    answer_name="rnn_states",
    run=_call,
)

HIDDEN_JACOBIAN_NORM = Call(
    id="ex08.hidden_jacobian_norm",
    answer_name="hidden_jacobian_norm",
    run=_call,
)

FORGET_PATH_FACTOR = Call(
    id="ex08.forget_path_factor",
    answer_name="forget_path_factor",
    run=lambda answer, case: answer(case["forget_bias"]),
)

CALLS = (RNN_STATES, HIDDEN_JACOBIAN_NORM, FORGET_PATH_FACTOR)
