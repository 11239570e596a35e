"""Argument checks every public function shares, so one mistake gets one message everywhere.

Each check returns the value it accepted (as ``int`` or ``float``) and raises ``ValueError``
saying what was wrong and what is allowed. ``True``/``False`` are never numbers here, though
Python counts ``bool`` as an ``int``.
"""

from __future__ import annotations

import math


def is_int(value: object) -> bool:
    """``value`` is an ``int`` and not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """``value`` is an ``int`` or ``float`` and not a ``bool`` (NaN and inf included)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(value: object, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]`` (either end open when ``None``).

    Messages: "seed must be a non-negative integer, got -1" (``minimum=0``), "depth must be a
    positive integer, got 0" (``minimum=1``), "depth must be an integer >= 2, got 1", "depth must
    be an integer in [2, 50], got 80".
    """
    if is_int(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
        return int(value)
    if maximum is not None:
        low = "-inf" if minimum is None else minimum
        allowed = f"an integer in [{low}, {maximum}]"
    elif minimum == 0:
        allowed = "a non-negative integer"
    elif minimum == 1:
        allowed = "a positive integer"
    elif minimum is not None:
        allowed = f"an integer >= {minimum}"
    else:
        allowed = "an integer"
    raise ValueError(f"{name} must be {allowed}, got {value!r}")


def check_number(
    value: object,
    name: str,
    low: float | None = None,
    high: float | None = None,
    *,
    include_low: bool = False,
    include_high: bool = False,
) -> float:
    """``value`` as a finite ``float`` between ``low`` and ``high`` (open ends unless included;
    no bound when ``None``).

    Messages: "lr must be a positive finite number, got 0" (``low=0``), "noise must be a
    non-negative finite number, got -1" (``low=0, include_low=True``), "test_fraction must be a
    number in (0, 1), got 1.5", "x must be a finite number, got nan".
    """
    ok = is_real(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value >= low if include_low else value > low
    if ok and high is not None:
        ok = value <= high if include_high else value < high
    if ok:
        return float(value)
    if low == 0 and high is None:
        allowed = "a non-negative finite number" if include_low else "a positive finite number"
    elif low is None and high is None:
        allowed = "a finite number"
    else:
        left = "-inf" if low is None else f"{low:g}"
        right = "inf" if high is None else f"{high:g}"
        allowed = f"a number in {'[' if include_low else '('}{left}, {right}{']' if include_high else ')'}"
    raise ValueError(f"{name} must be {allowed}, got {value!r}")


def check_choice(value: object, name: str, choices: tuple[str, ...] | list[str]) -> str:
    """``value`` if it is one of ``choices``: "at must be one of ['end', 'start'], got 'middle'"."""
    if isinstance(value, str) and value in choices:
        return value
    raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
