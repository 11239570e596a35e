"""GradientMonitor in the training loops practitioners write (issue 15, defect 7): clipping,
GradScaler's skipped steps, gradient accumulation, DDP. Each test failed before the fix."""

from __future__ import annotations

import math
import os
import socket
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from vgcourse.diagnosis import diagnose
from vgcourse.models import deep_mlp
from vgcourse.monitor import GradientMonitor
from vgcourse.training import task_loss


def batch(seed: int, n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=generator), torch.randint(0, 3, (n,), generator=generator)


def linear_grad_norms(model: nn.Module) -> list[float]:
    """float64 norm of each ``nn.Linear`` weight's gradient, computed here independently."""
    return [float(m.weight.grad.double().norm()) for m in model.modules() if isinstance(m, nn.Linear)]


def exploding_mlp() -> nn.Module:
    # tanh at weight scale 8: gradients grow toward the input (notebook 02)
    return deep_mlp(6, 3, depth=12, width=32, activation="tanh", init="xavier", weight_scale=8.0, seed=0)


def test_norms_are_taken_before_clipping_and_the_total_is_what_clipping_saw() -> None:
    model = exploding_mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    before_clipping, clipped_totals = [], []
    with GradientMonitor(model) as monitor:
        for step in range(6):
            x, y = batch(step)
            optimizer.zero_grad()
            task_loss(model(x), y).backward()
            before_clipping.append(linear_grad_norms(model))
            clipped_totals.append(float(nn.utils.clip_grad_norm_(model.parameters(), max_norm=1e-3)))
            optimizer.step()
    np.testing.assert_allclose(monitor.grad_norms(), before_clipping, rtol=1e-6)
    np.testing.assert_allclose(monitor.total_grad_norms(), clipped_totals, rtol=1e-5)
    assert monitor.total_grad_norms().min() > 100 * 1e-3  # clipping changed them all: post-clip norms read 1e-3
    assert diagnose(monitor, window=6).verdict == "exploding"  # clipping hides it from the optimizer, not from the monitor


def test_gradient_accumulation_records_the_gradient_the_step_used() -> None:
    model = deep_mlp(6, 3, depth=3, width=16, activation="relu", init="he", seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    used = []
    with GradientMonitor(model) as monitor:
        for step in range(3):
            optimizer.zero_grad()
            for micro in range(4):
                x, y = batch(10 * step + micro, n=8)
                (task_loss(model(x), y) / 4).backward()
            used.append(float(model.layer1.linear.weight.grad.double().norm()))
            optimizer.step()
    assert monitor.steps == 3 and monitor.skipped_steps() == []
    np.testing.assert_allclose(monitor.grad_norms()[:, 0], used, rtol=1e-6)


def test_steps_a_grad_scaler_skips_are_recorded_with_their_unscaled_norms() -> None:
    model = deep_mlp(6, 3, depth=3, width=16, activation="tanh", init="xavier", seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    unscaled, weights = [], []
    with GradientMonitor(model, grad_scaler=scaler, ratio_every=1) as monitor:
        for step in range(5):
            x, y = batch(step)
            if step == 2:
                x[0, 0] = math.inf  # an overflow: GradScaler skips this step
            optimizer.zero_grad()
            scaler.scale(task_loss(model(x), y)).backward()
            scaler.unscale_(optimizer)
            unscaled.append(float(model.layer2.linear.weight.grad.double().norm()))
            weights.append(model.layer2.linear.weight.detach().clone())
            scaler.step(optimizer)
            scaler.update()
    assert monitor.steps == 5 and monitor.skipped_steps() == [2]
    assert monitor.first_nonfinite() == (2, "layer 1")
    finite = [0, 1, 3, 4]
    np.testing.assert_allclose(monitor.grad_norms()[finite, 1], np.array(unscaled)[finite], rtol=1e-6)
    assert torch.equal(weights[2], weights[3])  # the step really was skipped
    assert np.isnan(monitor.update_ratios()[2]).all() and np.isfinite(monitor.update_ratios()[finite]).all()


def test_a_backward_pass_without_a_step_is_not_a_step() -> None:
    model = deep_mlp(6, 3, depth=3, width=16, activation="tanh", init="xavier", seed=0)
    with GradientMonitor(model) as monitor:
        for step in range(3):  # e.g. a probe measuring gradients, then resetting them
            model.zero_grad()
            task_loss(model(batch(step)[0]), batch(step)[1]).backward()
    assert monitor.steps == 0 and monitor.skipped_steps() == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, body: Callable[[int], object], results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        results[rank] = body(rank)
    finally:
        dist.destroy_process_group()


def on_two_ranks(body: Callable[[int], object]) -> tuple[object, object]:
    """What ``body(rank)`` returns on each of two gloo ranks (processes on this machine)."""
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_rank, args=(_free_port(), body, results), nprocs=2, join=True)
        return results[0], results[1]


def _ddp_worker(rank: int) -> tuple:
    model = deep_mlp(6, 3, depth=3, width=16, activation="tanh", init="xavier", seed=0)
    ddp = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05)
    averaged = []
    with GradientMonitor(ddp) as monitor:
        for step in range(3):
            x, y = batch(100 * step + rank)  # each rank its own data
            optimizer.zero_grad()
            task_loss(ddp(x), y).backward()
            averaged.append(linear_grad_norms(model))
            nn.utils.clip_grad_norm_(ddp.parameters(), 1e-4)
            optimizer.step()
    return monitor.layer_names, monitor.grad_norms().tolist(), averaged


def test_ddp_ranks_record_the_same_averaged_norms_before_clipping() -> None:
    (names0, norms0, averaged0), (names1, norms1, _) = on_two_ranks(_ddp_worker)
    assert names0 == names1 == ["layer 1", "layer 2", "layer 3"]  # no "module." prefix
    np.testing.assert_allclose(norms0, averaged0, rtol=1e-6)  # DDP's average, not the rank's own gradient
    np.testing.assert_allclose(norms0, norms1, rtol=1e-6)


def _fsdp_worker(rank: int) -> tuple:
    import warnings

    from torch.distributed.fsdp import fully_shard

    model = deep_mlp(6, 3, depth=3, width=16, activation="tanh", init="xavier", seed=0)
    reference = deep_mlp(6, 3, depth=3, width=16, activation="tanh", init="xavier", seed=0)
    for block in model.children():
        fully_shard(block)
    fully_shard(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    reference_optimizer = torch.optim.SGD(reference.parameters(), lr=0.05)
    expected = []
    with warnings.catch_warnings(record=True) as caught, GradientMonitor(model, ratio_every=1) as monitor:
        warnings.simplefilter("always")
        for step in range(3):
            optimizer.zero_grad()
            task_loss(model(batch(100 * step + rank)[0]), batch(100 * step + rank)[1]).backward()
            optimizer.step()
            # the same step unsharded: FSDP averages the two ranks' gradients
            reference_optimizer.zero_grad()
            sum(task_loss(reference(batch(100 * step + r)[0]), batch(100 * step + r)[1]) / 2
                for r in range(2)).backward()
            expected.append(linear_grad_norms(reference))
            reference_optimizer.step()
    return (monitor.grad_norms().tolist(), expected, monitor.update_ratios().tolist(),
            [str(w.message) for w in caught])


def test_fsdp2_sharded_gradients_are_measured_whole_on_every_rank() -> None:
    """Defect 2: FSDP2's fully_shard crashed the monitor (DTensor norms, _foreach_copy_)."""
    (norms0, expected, ratios0, warned), (norms1, _, _, _) = on_two_ranks(_fsdp_worker)
    np.testing.assert_allclose(norms0, expected, rtol=1e-5)  # the whole gradient, not a rank's shard
    np.testing.assert_allclose(norms0, norms1, rtol=1e-6)
    assert np.isfinite(ratios0).all()
    assert all("histograms" in message for message in warned)  # a shard's histogram is skipped, said once
