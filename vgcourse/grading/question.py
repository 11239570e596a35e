"""One graded question: randomized cases, the learner's call, a reference, and a comparison.

The same :class:`Question` serves both places an answer is tested:

* ``check()`` in the learner's notebook runs everything in the learner's process;
* the batch grader (:mod:`vgcourse.grading.batch`) sends the cases to the learner's kernel,
  which only runs the question's :class:`~vgcourse.grading.answering.Call` (its ``answer``) and
  returns the raw outputs; the reference and the comparison run in the grader's own process, so
  nothing the submission does to its kernel can change a score.

Cases and outputs cross between processes with ``torch.save`` / ``torch.load(weights_only=True)``,
so they must be built from tensors, numbers, strings, booleans, ``None``, lists, tuples and dicts.
A question's ``private`` case fields (an answer label) stay in the grader, for ``expected``, and
are never sent to the kernel (:func:`public_case`).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from vgcourse.grading.answering import NOT_ANSWERED, Call, Case  # noqa: F401 (Case is re-exported)
from vgcourse.validation import is_int, is_real


@dataclass(frozen=True)
class Question:
    """A graded question.

    Attributes:
        answer: how the learner's answer is found and run (:class:`~vgcourse.grading.answering.Call`):
            the question's ``id`` (e.g. ``"ex01.sigmoid_derivative"``, also in the answer cell's
            metadata) and ``answer_name`` are its. It runs where the learner's code runs.
        points: points for a fully correct answer (all cases pass; otherwise 0).
        task: one line saying what to write.
        hint: shown when the answer is wrong.
        cases: ``cases(generator) -> list[Case]``: fresh randomized inputs for one check.
        expected: ``expected(case) -> reference output``, computed in the checking process.
        compare: ``compare(got, expected, case) -> str | Passed | None``: ``None`` when ``got`` is
            right, a :class:`Passed` when it is right and the learner should see what was measured,
            otherwise a string saying what is wrong, for the learner.
        private: names of case fields only ``expected`` may read (an answer label): they are
            never sent to the kernel, where the learner's code could read them.
    """

    answer: Call
    points: int
    task: str
    hint: str
    cases: Callable[[torch.Generator], list[Case]]
    expected: Callable[[Case], Any]
    compare: Callable[[Any, Any, Case], str | Passed | None]
    private: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.answer, Call):
            raise TypeError(f"a Question's answer must be a Call, got {type(self.answer).__name__}")
        if not is_int(self.points) or self.points < 1:
            raise ValueError(f"points of {self.id} must be a positive integer, got {self.points!r}")

    @property
    def id(self) -> str:
        """The question's id, e.g. ``"ex01.sigmoid_derivative"``."""
        return self.answer.id

    @property
    def answer_name(self) -> str:
        """The name the learner's answer is defined under in the notebook."""
        return self.answer.answer_name

    @property
    def assignment(self) -> str:
        """The two-digit exercise number, e.g. ``"01"``."""
        return self.id[2:4]


@dataclass(frozen=True)
class Passed:
    """What a comparison returns for a right answer with something to show: ``note`` is added,
    indented under the question's id, to the pass message (e.g. the accuracy a set-up reached)."""

    note: str


MAX_NOTE = 2000
"""Characters of a note shown at most: the message goes into feedback files and CSVs."""

MAX_ERROR = 500
"""Characters of an answer's error message shown at most (it is the learner's text)."""

MAX_DEPTH = 32
"""Deepest nesting of lists and dicts accepted in an answer's outputs."""

MAX_ITEMS = 100_000
"""Most lists, dicts, tensors and scalars accepted in one answer's outputs."""


def public_case(question: Question, case: Case) -> Case:
    """``case`` without ``question``'s private fields: what the kernel may see."""
    return {name: value for name, value in case.items() if name not in question.private}


def output_problem(value: Any) -> str | None:
    """Why ``value`` (read back from a kernel) is not plain data the comparisons accept, or None.

    Plain data is ``None``, bool, int, float (finite or not), str, a real-valued CPU tensor
    (no complex dtype, no subclass), and lists and str-keyed dicts of those, at most
    :data:`MAX_DEPTH` deep and :data:`MAX_ITEMS` items in all. Checked without recursion, so a
    200,000-deep list is refused, not a RecursionError.
    """
    stack, seen = [(value, 0)], 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > MAX_ITEMS:
            return f"the answer returned more than {MAX_ITEMS} values"
        if depth > MAX_DEPTH:
            return f"the answer returned data nested more than {MAX_DEPTH} levels deep"
        if item is None or type(item) in (bool, int, float, str):
            continue
        if type(item) is Tensor:
            if item.is_complex() or item.dtype.is_complex:
                return f"the answer returned a complex tensor ({item.dtype}); a real one is expected"
            if item.is_sparse or item.device.type != "cpu" or item.requires_grad:
                return "the answer returned a tensor the checker cannot read"
            continue
        if type(item) in (list, tuple):
            stack.extend((v, depth + 1) for v in item)
        elif type(item) is dict:
            if not all(type(k) is str for k in item):
                return "the answer returned a dict whose keys are not strings"
            stack.extend((v, depth + 1) for v in item.values())
        else:
            return f"the answer returned a {type(item).__name__}, which the checker cannot read"
    return None


# ---- scoring (in the checking process) ---------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """The outcome of one question: points earned and a message for the learner."""

    question_id: str
    points: int
    max_points: int
    message: str
    answered: bool = True  # False when the answer still raised NotImplementedError, as handed out

    @property
    def passed(self) -> bool:
        return self.points == self.max_points


def score(question: Question, cases: list[Case], outputs: Any) -> Result:
    """Compare the learner's ``outputs`` with the reference on ``cases`` and award the points.

    ``outputs`` comes from :func:`call_outputs`, possibly via another process, so its shape is
    checked before it is trusted.
    """
    def fail(why: str) -> Result:
        return Result(question.id, 0, question.points, f"✗ {question.id}: {why}\n  Hint: {question.hint}")

    if not isinstance(outputs, list) or len(outputs) != len(cases):
        return fail("the answer's results could not be read")
    notes: list[str] = []
    for case, output in zip(cases, outputs):
        if not isinstance(output, dict) or len(output) != 1 or not ({"ok", "error"} & set(output)):
            return fail("the answer's results could not be read")
        if "error" in output:
            if type(output["error"]) is not str:
                return fail("the answer's results could not be read")
            error = output["error"]
            if error == NOT_ANSWERED:
                return Result(question.id, 0, question.points,
                              f"✗ {question.id}: not answered yet — replace `raise NotImplementedError` "
                              f"in `{question.answer_name}` with your code. Task: {question.task}", answered=False)
            error = " ".join(error[:4 * MAX_ERROR].split())
            error = error if len(error) <= MAX_ERROR else error[:MAX_ERROR - 1] + "…"
            return fail(f"{error}\n  on {describe_case(case)}")
        if problem := output_problem(output["ok"]):
            return fail(f"{problem}\n  on {describe_case(case)}")
        try:
            verdict = question.compare(output["ok"], question.expected(copy.deepcopy(case)), case)
        except Exception as error:  # a malformed answer must not crash the comparison
            verdict = f"the result could not be compared ({type(error).__name__}: {error})"
        if isinstance(verdict, Passed):
            notes.append(verdict.note)
        elif verdict is not None:
            return fail(f"{verdict}\n  on {describe_case(case)}")
    message = f"✓ {question.id}: passed {len(cases)} randomized tests ({question.points}/{question.points} points)"
    message += "".join(f"\n  {question.id}: {note}"[:MAX_NOTE] for note in notes)
    return Result(question.id, question.points, question.points, message)


def describe_case(case: Case, width: int = 4) -> str:
    """A short description of a case's inputs for messages: small values in full, tensors abridged."""
    parts = []
    for name, value in case.items():
        if name.startswith("_"):
            continue
        if isinstance(value, Tensor):
            flat = value.detach().flatten()[:width].tolist()
            shown = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in flat)
            more = ", …" if value.numel() > width else ""
            parts.append(f"{name}=tensor of shape {tuple(value.shape)} [{shown}{more}]")
        else:
            parts.append(f"{name}={value!r}")
    return ", ".join(parts) if parts else "the test input"


# ---- comparisons ------------------------------------------------------------------------------


def close_tensors(got: Any, expected: Tensor, rtol: float = 1e-5, atol: float = 1e-7) -> str | None:
    """``None`` if ``got`` is a tensor of ``expected``'s shape and values (within tolerance)."""
    if not isinstance(got, Tensor):
        return f"expected a tensor, got {type(got).__name__}"
    if tuple(got.shape) != tuple(expected.shape):
        return f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
    if got.dtype.is_complex or got.dtype.is_floating_point != expected.dtype.is_floating_point:
        kind = "floating-point" if expected.dtype.is_floating_point else "integer"
        return f"expected a real {kind} tensor, got dtype {got.dtype}"
    got = got.to(expected.dtype)
    if not torch.allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True):
        diff = (got - expected).abs()
        diff = torch.where(torch.isnan(diff), torch.full_like(diff, float("inf")), diff)
        where = int(diff.flatten().argmax())
        return (f"values differ: at flat index {where} expected {float(expected.flatten()[where]):.6g}, "
                f"got {float(got.flatten()[where]):.6g}")
    return None


def close_numbers(got: Any, expected: float, rtol: float = 1e-5, atol: float = 1e-8) -> str | None:
    """``None`` if ``got`` is a real number within tolerance of ``expected``."""
    if isinstance(got, Tensor) and got.numel() == 1:
        got = float(got)
    if not is_real(got):
        return f"expected a number, got {type(got).__name__}"
    if not abs(got - expected) <= atol + rtol * abs(expected):
        return f"expected {expected:.6g}, got {got:.6g}"
    return None


def positive_number(got: Any, what: str) -> float | str:
    """``got`` as a ``float`` if it is a positive finite number (a one-element tensor counts), else
    the message saying what was expected: "expected a positive number ({what}), got ...".

    The first step of comparing a predicted factor, gain or ratio with its measurement.
    """
    if isinstance(got, Tensor) and got.numel() == 1:
        got = float(got)
    if not is_real(got) or not math.isfinite(got) or got <= 0:
        return f"expected a positive number ({what}), got {got!r}"
    return float(got)


def equal_values(got: Any, expected: Any) -> str | None:
    """``None`` if ``got == expected`` (for ints, strings, booleans)."""
    if type(got) is not type(expected) or got != expected:
        return f"expected {expected!r}, got {got!r}"
    return None
