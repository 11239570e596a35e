"""What a grading kernel needs of every question: a :class:`~vgcourse.grading.answering.Call` each,
by id, from ``ex01`` … ``ex10``. Nothing here imports the questions' references
(:mod:`vgcourse.grading.questions`), which the sandbox hides from the kernel."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

from vgcourse.grading.answering import Call, unknown_question

MODULES: tuple[str, ...] = tuple(sorted(info.name for info in pkgutil.iter_modules([str(Path(__file__).parent)])
                                        if re.fullmatch(r"ex\d\d", info.name)))


def _collect() -> dict[str, Call]:
    calls: dict[str, Call] = {}
    for name in MODULES:
        for call in importlib.import_module(f"{__name__}.{name}").CALLS:
            if call.id in calls or call.id[:4] != name:
                raise ValueError(f"call {call.id!r} is defined twice or in the wrong module ({name})")
            calls[call.id] = call
    return calls


CALLS: dict[str, Call] = _collect()
"""Every question's call, in course order."""


def get_call(question_id: str) -> Call:
    """The call of question ``question_id``.

    Raises:
        ValueError: for an unknown id, suggesting the closest known ones.
    """
    if isinstance(question_id, str) and question_id in CALLS:
        return CALLS[question_id]
    raise unknown_question(question_id, list(CALLS))
