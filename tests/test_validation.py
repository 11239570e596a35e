"""Tests for vgcourse.validation: what each check accepts, and the one message for each mistake."""

import math

import pytest

from vgcourse.validation import check_choice, check_int, check_number, is_int, is_real


def test_bools_are_not_numbers():
    assert is_int(3) and not is_int(True) and not is_int(3.0)
    assert is_real(3) and is_real(2.5) and is_real(math.nan) and not is_real(False) and not is_real("1")


@pytest.mark.parametrize(("value", "kwargs", "message"), [
    (-1, {"minimum": 0}, "seed must be a non-negative integer, got -1"),
    (0, {"minimum": 1}, "seed must be a positive integer, got 0"),
    (True, {"minimum": 1}, "seed must be a positive integer, got True"),
    (1, {"minimum": 2}, "seed must be an integer >= 2, got 1"),
    (80, {"minimum": 2, "maximum": 50}, r"seed must be an integer in \[2, 50\], got 80"),
    (2.0, {}, "seed must be an integer, got 2.0"),
])
def test_check_int_names_the_mistake(value, kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        check_int(value, "seed", **kwargs)


def test_check_int_returns_what_it_accepts():
    assert check_int(0, "seed", minimum=0) == 0 and check_int(50, "depth", 2, 50) == 50 and check_int(-3, "n") == -3


@pytest.mark.parametrize(("value", "kwargs", "message"), [
    (0, {"low": 0}, "lr must be a positive finite number, got 0"),
    (math.inf, {"low": 0}, "lr must be a positive finite number, got inf"),
    (-1, {"low": 0, "include_low": True}, "lr must be a non-negative finite number, got -1"),
    (1.5, {"low": 0, "high": 1}, r"lr must be a number in \(0, 1\), got 1.5"),
    (1.5, {"low": 0, "high": 1, "include_high": True}, r"lr must be a number in \(0, 1\], got 1.5"),
    (math.nan, {}, "lr must be a finite number, got nan"),
    ("0.1", {"low": 0}, "lr must be a positive finite number, got '0.1'"),
    (False, {}, "lr must be a finite number, got False"),
])
def test_check_number_names_the_mistake(value, kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        check_number(value, "lr", **kwargs)


def test_check_number_accepts_the_bounds_it_includes():
    assert check_number(0, "noise", low=0, include_low=True) == 0.0
    assert check_number(1, "p", low=0, high=1, include_high=True) == 1.0 and isinstance(check_number(2, "x"), float)


def test_check_choice():
    assert check_choice("end", "at", ("end", "start")) == "end"
    with pytest.raises(ValueError, match=r"^at must be one of \['end', 'start'\], got 'middle'$"):
        check_choice("middle", "at", ("end", "start"))
