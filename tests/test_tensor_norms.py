"""Tests for vgcourse.tensor_norms, against float64 norms computed one tensor at a time."""

from __future__ import annotations

import math

import pytest
import torch

from vgcourse.tensor_norms import dense_values, each, l2_norms


def reference(tensors: list[torch.Tensor]) -> list[float]:
    return [float(t.double().pow(2).sum().sqrt()) for t in tensors]


def test_norms_are_float64_and_right_for_tiny_ordinary_and_huge_values() -> None:
    tensors = [torch.full((4, 4), 1e-27), torch.randn(8, 8, generator=torch.Generator().manual_seed(0)),
               torch.full((3,), 1e25), torch.zeros(2, 2)]
    norms = l2_norms(tensors)
    assert norms.dtype == torch.float64
    assert norms.tolist() == pytest.approx(reference(tensors), rel=1e-6)
    assert norms[3] == 0.0  # exactly 0 only when every entry is


def test_a_tensor_that_cannot_be_measured_reads_nan_and_is_reported() -> None:
    failures = []
    good = torch.ones(3)
    bad = torch.ones(3, dtype=torch.int64)  # vector_norm refuses integer tensors
    norms = l2_norms([good, bad], lambda index, error: failures.append((index, type(error).__name__)))
    assert norms[0] == pytest.approx(math.sqrt(3)) and math.isnan(norms[1])
    assert failures == [(1, "RuntimeError")]


def test_sparse_gradients_are_measured_from_their_values() -> None:
    sparse = torch.sparse_coo_tensor([[0, 2]], [3.0, 4.0], (5,))
    assert l2_norms([dense_values(sparse)]).item() == pytest.approx(5.0)


def test_each_applies_the_method_pairwise() -> None:
    targets, others = [torch.zeros(2), torch.ones(3)], [torch.ones(2), torch.ones(3)]
    each("add_", targets, others)
    assert targets[0].tolist() == [1.0, 1.0] and targets[1].tolist() == [2.0, 2.0, 2.0]
