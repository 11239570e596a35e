"""The grade of one submission: its points per question, and a status saying how its run went."""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from vgcourse.grading.question import Result

STATUSES: dict[str, str] = {
    "ok": "every answer cell and import ran without an exception (grading runs nothing else)",
    "not attempted": "everything ran, and every answer still raises NotImplementedError as handed out: "
                     "nothing was answered",
    "errors": "some answer cells or imports raised exceptions; the others still ran and every question "
              "was graded",
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


MAX_REASON = 500
"""Characters of a problem's description kept: it may quote the learner's text."""

# Terminal escape sequences: CSI (colours, cursor moves), OSC (window titles, links) and 2-byte ones.
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Characters that reorder the text around them when displayed (a name could seem to be another)."""


def unsafe_character(text: str) -> str | None:
    """The first control or bidirectional-formatting character in ``text``, or None."""
    return next((c for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in BIDI_CONTROLS), None)


def clean_text(text: object, limit: int, *, lines: bool = True, redact: bool = True) -> str:
    """``text`` safe to show: terminal escapes, control and bidi characters removed (``\\r`` too),
    each continuation line indented, at most ``limit`` characters; one line unless ``lines``.

    Indenting every line after the first means learner text can never start a line of its own
    (a forged ``Score: 6 / 6 points``); with ``redact``, values of the grader's environment are
    replaced by ``$NAME`` (:func:`redact_environment`).
    """
    text = _ESCAPE.sub("", str(text)[: 4 * limit])
    text = "".join(c if c in "\n\t" or unsafe_character(c) is None else ("\n" if c in "\u2028\u2029" else "")
                   for c in text)
    text = redact_environment(text) if redact else text
    if lines:
        first, *rest = text.replace("\t", "    ").split("\n")
        text = "\n".join([first.rstrip()] + [line.rstrip() if line[:1] == " " else "  " + line.rstrip()
                                              for line in rest if line.strip()])
    else:
        text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redact_environment(text: str, environ: dict[str, str] | None = None) -> str:
    """``text`` with every value of the grader's environment variables that is 8 characters or
    longer (tokens, keys, private paths) replaced by ``$NAME``: the learner's code runs where
    those may be readable, and its messages reach the feedback."""
    environ = os.environ if environ is None else environ
    values = sorted(((value, name) for name, value in environ.items() if len(value) >= 8),
                    key=lambda pair: -len(pair[0]))
    for value, name in values:
        if value in text:
            text = text.replace(value, f"${name}")
    return text


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
        """Record a problem; the most serious status (first reason among equals) wins.
        ``reason`` is cleaned to one line (:func:`clean_text`): it may quote the learner."""
        reason = clean_text(reason, MAX_REASON, lines=False)
        self.problems.append(reason)
        if list(STATUSES).index(status) > list(STATUSES).index(self.status):
            self.status, self.error = status, reason
