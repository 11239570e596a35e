"""Tests for vgcourse.step_table: rows, bulk moves to the CPU, thinning to a bound."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vgcourse.step_table import FLUSH_ROWS, StepTable


def table(**kwargs: object) -> StepTable:
    return StepTable({"norm": ((2,), np.float64), "total": ((), np.float32)}, **kwargs)


def test_rows_read_back_with_nan_where_a_kind_is_missing() -> None:
    t = table()
    t.add(0, norm=torch.tensor([1.0, 2.0]), total=torch.tensor(3.0))
    t.add(1, norm=torch.tensor([4.0, 5.0]))
    t.set_last("total", torch.tensor(6.0))
    t.add(2, norm=None, total=torch.tensor(7.0))
    np.testing.assert_array_equal(t.column("norm"), [[1, 2], [4, 5], [np.nan, np.nan]])
    np.testing.assert_array_equal(t.column("total"), [3, 6, 7])
    assert t.column("total").dtype == np.float32 and list(t.steps()) == [0, 1, 2] and len(t) == 3


def test_rows_move_to_the_cpu_in_bulk() -> None:
    t = table()
    for step in range(FLUSH_ROWS + 10):
        t.add(step, norm=torch.tensor([step, -step], dtype=torch.float64))
    assert len(t._recent_steps) == 10 and len(t._steps) == FLUSH_ROWS  # one block moved, the rest waits
    assert t.column("norm")[:, 0].tolist() == list(range(FLUSH_ROWS + 10))


def test_a_limit_keeps_evenly_spaced_steps_over_the_whole_run() -> None:
    t = table(limit=8)
    wanted = [step for step in range(100) if t.wants(step) and (t.add(step, norm=torch.tensor([step, 0.0])) or True)]
    steps = t.steps()
    assert len(t) <= 8 and steps[0] == 0 and steps[-1] >= 100 - t.stride  # the whole run, start to end
    assert (np.diff(steps) == t.stride).all() and t.stride == 16
    np.testing.assert_array_equal(t.column("norm")[:, 0], steps)  # each row kept its own values
    assert wanted[:3] == [0, 1, 2]


def test_a_stride_keeps_every_nth_step() -> None:
    t = table(stride=3)
    assert [step for step in range(10) if t.wants(step)] == [0, 3, 6, 9]


@pytest.mark.parametrize("kwargs, message", [
    ({"stride": 0}, "stride must be a positive integer, got 0"),
    ({"limit": 1}, r"limit must be an integer >= 2, got 1"),
])
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        table(**kwargs)


def test_unknown_kinds_and_setting_before_any_row_are_refused() -> None:
    t = table()
    with pytest.raises(ValueError, match=r"unknown kind\(s\) \['bogus'\]; the table has \['norm', 'total'\]"):
        t.add(0, bogus=torch.tensor(1.0))
    with pytest.raises(ValueError, match="no row to set yet"):
        t.set_last("norm", torch.zeros(2))
