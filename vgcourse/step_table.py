"""A table of per-step records that stays small on long runs.

    table = StepTable({"grad": ((3,), np.float64)}, stride=1, limit=10_000)
    if table.wants(step):
        table.add(step, grad=norms)           # a tensor, on any device
    table.column("grad")                      # numpy (rows, 3); table.steps() their step numbers

Rows are kept as the tensors they were computed as (no host sync per step) and moved to the CPU
in bulk, ``FLUSH_ROWS`` at a time. With a ``limit``, a table about to exceed it keeps every other
row and doubles its stride, so a run of any length keeps at most ``limit`` evenly spaced steps.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from vgcourse.validation import check_int

__all__ = ["FLUSH_ROWS", "StepTable"]

FLUSH_ROWS = 256
"""Rows kept as tensors before they are moved to the CPU together (one host sync)."""


class StepTable:
    """Rows for the steps ``0, stride, 2 * stride, ...``, one value per kind and row.

    Args:
        kinds: each kind's row shape and numpy dtype, e.g. ``{"grad": ((layers,), np.float64)}``.
        stride: the steps to keep (``wants(step)``); doubled each time ``limit`` is reached.
        limit: the most rows kept, at least 2; ``None`` keeps every row.
    """

    def __init__(self, kinds: dict[str, tuple[tuple[int, ...], type]], stride: int = 1,
                 limit: int | None = None) -> None:
        self.stride = check_int(stride, "stride", minimum=1)
        self.limit = None if limit is None else check_int(limit, "limit", minimum=2)
        self._kinds = dict(kinds)
        self._steps = np.zeros(0, dtype=np.int64)  # of the rows on the CPU
        self._done = {kind: np.zeros((0, *shape), dtype) for kind, (shape, dtype) in self._kinds.items()}
        self._recent_steps: list[int] = []
        self._recent: dict[str, list[Tensor | None]] = {kind: [] for kind in self._kinds}

    def __len__(self) -> int:
        return len(self._steps) + len(self._recent_steps)

    def wants(self, step: int) -> bool:
        """Whether a row for ``step`` would be kept."""
        return step % self.stride == 0

    def add(self, step: int, **values: Tensor | None) -> None:
        """A row for ``step`` (later than every row so far); a kind not given reads NaN."""
        unknown = set(values) - set(self._kinds)
        if unknown:
            raise ValueError(f"unknown kind(s) {sorted(unknown)}; the table has {list(self._kinds)}")
        if len(self._recent_steps) >= FLUSH_ROWS or (self.limit is not None and len(self) >= self.limit):
            self._flush()
        if self.limit is not None and len(self) >= self.limit:
            self._thin()
        if not self.wants(step):  # thinning doubled the stride past this step
            return
        self._recent_steps.append(step)
        for kind in self._kinds:
            self._recent[kind].append(values.get(kind))

    def set_last(self, kind: str, value: Tensor | None) -> None:
        """Set (or replace) ``kind`` in the newest row, e.g. a value known only after the step."""
        if not self._recent_steps:
            raise ValueError("the table has no row to set yet")
        self._recent[kind][-1] = value

    def last_step(self) -> int | None:
        """The step of the newest row, ``None`` if there is none."""
        if self._recent_steps:
            return self._recent_steps[-1]
        return int(self._steps[-1]) if len(self._steps) else None

    def steps(self) -> np.ndarray:
        """The step of each row, ascending."""
        return np.concatenate([self._steps, np.array(self._recent_steps, dtype=np.int64)])

    def column(self, kind: str) -> np.ndarray:
        """``kind`` of every row, ``(rows, *shape)``; NaN where a row has none."""
        return np.concatenate([self._done[kind], self._on_cpu(kind)])

    def _on_cpu(self, kind: str) -> np.ndarray:
        shape, dtype = self._kinds[kind]
        rows = self._recent[kind]
        block = np.full((len(rows), *shape), np.nan, dtype=dtype)
        present = [i for i, row in enumerate(rows) if row is not None]
        if present:
            try:  # one transfer for all of them
                block[present] = torch.stack([rows[i] for i in present]).detach().cpu().numpy()
            except RuntimeError:  # rows on different devices (the model moved during the run)
                block[present] = np.stack([rows[i].detach().cpu().numpy() for i in present])
        return block

    def _flush(self) -> None:
        for kind in self._kinds:
            self._done[kind] = np.concatenate([self._done[kind], self._on_cpu(kind)])
            self._recent[kind] = []
        self._steps = np.concatenate([self._steps, np.array(self._recent_steps, dtype=np.int64)])
        self._recent_steps = []

    def _thin(self) -> None:
        self._flush()
        self.stride *= 2
        keep = self._steps % self.stride == 0
        self._steps = self._steps[keep]
        for kind in self._kinds:
            self._done[kind] = self._done[kind][keep]
