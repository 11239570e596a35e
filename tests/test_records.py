"""Tests for vgcourse.records: MonitorRecords, its validation, pickling and exports."""

from __future__ import annotations

import csv
import math
import pickle
import sys

import numpy as np
import pytest
import torch

from vgcourse.models import deep_mlp, layers
from vgcourse.monitor import GradientMonitor
from vgcourse.records import TOTAL_LAYER, Histogram, MonitorRecords, first_nonfinite_norm
from vgcourse.training import task_loss

NAN = math.nan
LAYERS = ("a", "layer 2")


def records(**changes: object) -> MonitorRecords:
    """3 steps x 2 layers with known values; the NaNs are quantities not recorded."""
    fields = dict(
        layer_names=LAYERS,
        grad_norm=np.array([[1.0, 2.0], [3.0, 0.25], [5.0, 6.0]]),
        update_ratio=np.array([[0.1, NAN], [0.3, NAN], [0.2, NAN]]),
        activation_mean=np.array([[0.5, -0.5], [0.75, NAN], [0.5, -1.5]]),
        activation_std=np.full((3, 2), NAN),
        saturated_fraction=np.array([[0.0, NAN], [0.5, NAN], [1.0, NAN]]),
        dead_fraction=np.array([[NAN, 0.125], [NAN, 0.25], [NAN, 0.5]]),
        total_grad_norm=np.array([4.0, 8.0, 2.0]),
        skipped=(1,),
        saturation_margin=0.05,
        hist_every=2,
        bins=2,
        grad_histograms=(
            Histogram(2, "a", np.array([-1.0, 0.0, 1.0]), np.array([0, 4])),
            Histogram(0, "layer 2", np.array([0.0, 1.0, 2.0]), np.array([3, 4])),
            Histogram(0, "a", np.array([-2.0, 0.0, 2.0]), np.array([1, 1])),
        ),
        activation_histograms=(Histogram(0, "a", np.array([0.0, 0.5, 1.0]), np.array([2, 0])),),
    )
    fields.update(changes)
    return MonitorRecords(**fields)


# The table of records(), written out by hand: by quantity, then layer in forward order, then step.
EXPECTED_ROWS = [
    (0, "a", "grad_norm", 1.0), (1, "a", "grad_norm", 3.0), (2, "a", "grad_norm", 5.0),
    (0, "layer 2", "grad_norm", 2.0), (1, "layer 2", "grad_norm", 0.25), (2, "layer 2", "grad_norm", 6.0),
    (0, "a", "update_ratio", 0.1), (1, "a", "update_ratio", 0.3), (2, "a", "update_ratio", 0.2),
    (0, "a", "activation_mean", 0.5), (1, "a", "activation_mean", 0.75), (2, "a", "activation_mean", 0.5),
    (0, "layer 2", "activation_mean", -0.5), (2, "layer 2", "activation_mean", -1.5),
    (0, "a", "saturated_fraction", 0.0), (1, "a", "saturated_fraction", 0.5), (2, "a", "saturated_fraction", 1.0),
    (0, "layer 2", "dead_fraction", 0.125), (1, "layer 2", "dead_fraction", 0.25),
    (2, "layer 2", "dead_fraction", 0.5),
    (0, "(all)", "total_grad_norm", 4.0), (1, "(all)", "total_grad_norm", 8.0), (2, "(all)", "total_grad_norm", 2.0),
]


def assert_same_records(left: MonitorRecords, right: MonitorRecords) -> None:
    assert left.layer_names == right.layer_names and left.steps == right.steps
    for query in ("grad_norms", "update_ratios", "activation_means", "activation_stds", "saturated_fractions",
                  "dead_fractions", "total_grad_norms"):
        np.testing.assert_array_equal(getattr(left, query)(), getattr(right, query)())  # NaN == NaN here
    assert left.skipped_steps() == right.skipped_steps()
    assert (left.saturation_margin, left.hist_every, left.bins) == (right.saturation_margin, right.hist_every,
                                                                    right.bins)
    for kind in ("grad", "activation"):
        assert len(left.histograms(kind)) == len(right.histograms(kind))
        for a, b in zip(left.histograms(kind), right.histograms(kind)):
            assert (a.step, a.layer) == (b.step, b.layer)
            np.testing.assert_array_equal(a.edges, b.edges)
            np.testing.assert_array_equal(a.counts, b.counts)


# ---- queries ---------------------------------------------------------------------------------


def test_queries_return_the_values_given_as_copies() -> None:
    given = np.array([[1.0, 2.0], [3.0, 0.25], [5.0, 6.0]])
    rec = records(grad_norm=given)
    given[0, 0] = 99.0  # the caller's array stays theirs
    norms = rec.grad_norms()
    norms[1, 1] = -1.0  # and so does the copy a query returns
    assert rec.grad_norms()[0, 0] == 1.0 and rec.grad_norms()[1, 1] == 0.25
    assert rec.steps == 3 and rec.layer_names == LAYERS and rec.skipped_steps() == [1]
    np.testing.assert_array_equal(rec.total_grad_norms(), [4.0, 8.0, 2.0])
    with pytest.raises(ValueError):  # the record's own arrays are read-only
        rec.grad_norm[0, 0] = 7.0
    with pytest.raises(AttributeError):  # and frozen
        rec.bins = 3


def test_histograms_sorted_by_step_then_forward_order_and_kind_checked() -> None:
    rec = records()
    assert [(h.step, h.layer) for h in rec.histograms("grad")] == [(0, "a"), (0, "layer 2"), (2, "a")]
    assert [h.counts.tolist() for h in rec.histograms()] == [[1, 1], [3, 4], [0, 4]]
    assert [(h.step, h.layer) for h in rec.histograms("activation")] == [(0, "a")]
    rec.histograms()[0].counts[0] = 50
    assert rec.histograms()[0].counts[0] == 1
    with pytest.raises(ValueError, match=r"kind must be one of \['grad', 'activation'\], got 'weights'"):
        rec.histograms("weights")


def test_first_nonfinite_is_the_first_step_then_the_first_layer_in_forward_order() -> None:
    norms = np.array([[1.0, 2.0], [3.0, math.inf], [NAN, NAN]])
    assert records(grad_norm=norms).first_nonfinite() == (1, "layer 2")
    assert records(grad_norm=np.array([[1.0, 2.0], [NAN, math.inf], [1.0, 1.0]])).first_nonfinite() == (1, "a")
    assert records().first_nonfinite() is None
    assert first_nonfinite_norm(np.array([[1.0], [-math.inf]]), ["x"]) == (1, "x")


# ---- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "message"), [
    ({"update_ratio": np.zeros((3, 3))}, r"update_ratio must have shape \(steps, layers\) = \(3, 2\), got \(3, 3\)"),
    ({"dead_fraction": np.zeros((2, 2))}, r"dead_fraction must have shape .* = \(3, 2\), got \(2, 2\)"),
    ({"grad_norm": np.zeros(3)}, r"grad_norm must have shape \(steps, 2\) for 2 layer\(s\), got \(3,\)"),
    ({"total_grad_norm": np.zeros((3, 1))}, r"total_grad_norm must have shape \(steps,\) = \(3,\), got \(3, 1\)"),
    ({"layer_names": ("a", "a")}, r"layer_names must be distinct"),
    ({"layer_names": "ab"}, r"layer_names must be a non-empty sequence of str, got 'ab'"),
    ({"skipped": (2, 1)}, r"skipped must be distinct optimizer steps >= 0, ascending, got \(2, 1\)"),
    ({"optimizer_steps": np.array([0, 2, 2])}, r"optimizer_steps must be 3 ascending optimizer steps >= 0"),
    ({"skipped": (2, 1)}, r"skipped must be .* got \(2, 1\)"),
    ({"bins": 0}, r"bins must be a positive integer, got 0"),
    ({"grad_histograms": (Histogram(0, "c", np.zeros(3), np.zeros(2)),)}, r"grad_histograms .* layers \['a', 'layer 2'\]"),
    ({"activation_histograms": (Histogram(0, "a", np.zeros(2), np.zeros(2)),)},
     r"a Histogram with 2 counts needs 3 edges, got shape \(2,\) \(step 0, layer 'a'\)"),
])
def test_bad_fields_are_named_with_what_is_expected(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        records(**changes)


def test_of_names_what_the_object_lacks() -> None:
    with pytest.raises(TypeError, match=r"object has no \['layer_names', 'grad_norms'"):
        MonitorRecords.of(object())


# ---- pickling --------------------------------------------------------------------------------


def test_pickle_round_trip_keeps_every_field_and_stays_read_only() -> None:
    rec = records()
    loaded = pickle.loads(pickle.dumps(rec))
    assert_same_records(loaded, rec)
    assert not loaded.grad_norm.flags.writeable and not loaded.grad_histograms[0].counts.flags.writeable


def test_torch_save_round_trip_needs_weights_only_false(tmp_path) -> None:
    rec, path = records(), tmp_path / "run.pt"
    torch.save(rec, path)
    assert_same_records(torch.load(path, weights_only=False), rec)
    with pytest.raises(pickle.UnpicklingError):  # documented: not on torch's allow-list
        torch.load(path, weights_only=True)


# ---- exports ---------------------------------------------------------------------------------


def test_to_dataframe_has_one_row_per_recorded_value() -> None:
    frame = records().to_dataframe()
    assert list(frame.columns) == ["step", "layer", "quantity", "value"]
    assert list(frame.itertuples(index=False, name=None)) == EXPECTED_ROWS
    assert frame["step"].dtype == np.int64 and frame["value"].dtype == np.float64
    assert not frame["value"].isna().any()
    assert set(frame["quantity"]) == {"grad_norm", "update_ratio", "activation_mean", "saturated_fraction",
                                      "dead_fraction", "total_grad_norm"}  # activation_std: all NaN


def test_to_dataframe_without_pandas_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'vgcourse\[export\]' torch==2\.13\.0"):
        records().to_dataframe()


def test_to_csv_writes_the_table(tmp_path) -> None:
    path = records().to_csv(str(tmp_path / "run.csv"))
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["step", "layer", "quantity", "value"]
    assert [(int(s), layer, q, float(v)) for s, layer, q, v in rows[1:]] == EXPECTED_ROWS


def test_to_csv_refuses_to_overwrite_unless_asked(tmp_path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("a learner's work\n")
    with pytest.raises(FileExistsError, match="mine.csv.*overwrite=True"):
        records().to_csv(path)
    assert path.read_text() == "a learner's work\n"
    records().to_csv(path, overwrite=True)
    assert path.read_text().splitlines()[0] == "step,layer,quantity,value"
    assert len(path.read_text().splitlines()) == len(EXPECTED_ROWS) + 1


def test_to_tensorboard_scalars_and_histograms_read_back(tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path))
    records().to_tensorboard(writer)
    writer.close()
    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("grad_norm/layer 2")] == [(0, 2.0), (1, 0.25), (2, 6.0)]
    assert [(e.step, e.value) for e in events.Scalars("total_grad_norm")] == [(0, 4.0), (1, 8.0), (2, 2.0)]
    assert [e.step for e in events.Scalars("activation_mean/layer 2")] == [0, 2]  # the NaN left out
    tags = events.Tags()
    assert "update_ratio/layer 2" not in tags["scalars"] and "activation_std/a" not in tags["scalars"]
    assert sorted(tags["histograms"]) == ["activation_hist/a", "grad_hist/a", "grad_hist/layer 2"]
    (hist,) = events.Histograms("grad_hist/layer 2")
    value = hist.histogram_value
    assert hist.step == 0 and list(value.bucket) == [3, 4] and list(value.bucket_limit) == [1.0, 2.0]
    # bin centres 0.5 and 1.5: sum 3 * 0.5 + 4 * 1.5, sum of squares 3 * 0.25 + 4 * 2.25
    assert (value.num, value.sum, value.sum_squares, value.min, value.max) == (7, 7.5, 9.75, 0.0, 2.0)
    assert [(h.step, h.histogram_value.min) for h in events.Histograms("grad_hist/a")] == [(0, -2.0), (2, 0.0)]


def test_to_tensorboard_checks_the_writer() -> None:
    with pytest.raises(TypeError, match=r"SummaryWriter.*dict has no \['add_scalar', 'add_histogram_raw'\]"):
        records().to_tensorboard({})

    class ScalarsOnly:
        def __init__(self) -> None:
            self.logged = []

        def add_scalar(self, tag: str, value: float, global_step: int) -> None:
            self.logged.append((tag, global_step, value))

    with pytest.raises(TypeError, match=r"ScalarsOnly has no \['add_histogram_raw'\]"):
        records().to_tensorboard(ScalarsOnly())
    writer = ScalarsOnly()
    records().to_tensorboard(writer, histograms=False)
    expected = [(q if layer == TOTAL_LAYER else f"{q}/{layer}", step, v) for step, layer, q, v in EXPECTED_ROWS]
    assert writer.logged == expected


def test_summary_has_a_row_per_layer_with_medians() -> None:
    text = records().summary()
    lines = text.splitlines()
    assert lines[0] == "3 steps, 1 skipped; median total grad norm 4.000e+00"
    assert lines[1].split() == ["layer", "grad", "norm", "update", "ratio", "saturated", "dead"]
    # medians: grad norms [1, 3, 5] and [2, 0.25, 6], update ratios [0.1, 0.3, 0.2], saturated [0, 0.5, 1]
    assert lines[3].split() == ["a", "3.000e+00", "2.000e-01", "0.500", "-"]
    assert lines[4].split() == ["layer", "2", "2.000e+00", "-", "-", "0.250"]
    assert len(lines) == 5 and len({len(line) for line in lines[1:]}) == 1  # fixed width


def test_summary_says_dash_for_a_total_not_recorded() -> None:
    assert records(total_grad_norm=np.full(3, NAN)).summary().splitlines()[0].endswith("grad norm -")


# ---- a real monitor --------------------------------------------------------------------------


def test_records_of_a_real_monitor_match_it_and_an_independent_norm() -> None:
    model = deep_mlp(6, 3, depth=3, width=8, activation="tanh")
    opt, totals = torch.optim.SGD(model.parameters(), lr=0.05), []
    gen = torch.Generator().manual_seed(0)
    with GradientMonitor(model, hist_every=2, bins=5) as mon:
        for _ in range(3):
            x, y = torch.randn(16, 6, generator=gen), torch.randint(0, 3, (16,), generator=gen)
            opt.zero_grad()
            task_loss(model(x), y).backward()
            totals.append(torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]).item())
            opt.step()
    np.testing.assert_allclose(mon.total_grad_norms(), totals, rtol=1e-6)
    rec = pickle.loads(pickle.dumps(mon))  # a monitor pickles as its records
    assert isinstance(rec, MonitorRecords)
    assert rec.steps == 3 and rec.layer_names == tuple(mon.layer_names) and rec.hist_every == 2 and rec.bins == 5
    np.testing.assert_array_equal(rec.grad_norms(), mon.grad_norms())
    np.testing.assert_array_equal(rec.saturated_fractions(), mon.saturated_fractions())
    assert rec.first_nonfinite() == mon.first_nonfinite() is None
    assert [(h.step, h.layer) for h in rec.histograms("activation")] == [
        (h.step, h.layer) for h in mon.histograms("activation")]
    # the last step's gradients are still on the weights (SGD does not clear them)
    weights = {layer.name: layer.weight for layer in layers(model)}
    last = [torch.linalg.vector_norm(weights[name].grad, dtype=torch.float64).item() for name in rec.layer_names]
    np.testing.assert_allclose(rec.grad_norms()[-1], last, rtol=1e-6)  # float32 sums of squares
    frame = rec.to_dataframe()
    totals_table = frame[frame["quantity"] == "total_grad_norm"]
    np.testing.assert_allclose(totals_table["value"], totals, rtol=1e-6)
    assert set(totals_table["layer"]) == {TOTAL_LAYER}
    assert len(frame[frame["quantity"] == "grad_norm"]) == 3 * len(rec.layer_names)
    assert "dead_fraction" not in set(frame["quantity"])  # tanh: no dead units recorded
    assert all(name in rec.summary() for name in rec.layer_names)


def test_no_steps_gives_an_empty_table_and_dashes() -> None:
    empty = np.zeros((0, 2))
    rec = MonitorRecords(LAYERS, empty, empty, empty, empty, empty, empty, np.zeros(0), (), 0.05, 1, 4)
    assert rec.steps == 0 and rec.first_nonfinite() is None and len(rec.to_dataframe()) == 0
    assert rec.summary().splitlines()[3].split() == ["a", "-", "-", "-", "-"]


def test_a_nan_gradient_norm_is_kept_in_the_exports(tmp_path) -> None:
    rec = records(grad_norm=np.array([[1.0, NAN], [3.0, 0.25], [5.0, 6.0]]))
    frame = rec.to_dataframe()
    grads = frame[frame["quantity"] == "grad_norm"]
    assert len(grads) == 6 and np.isnan(grads[(grads["layer"] == "layer 2") & (grads["step"] == 0)]["value"]).all()
    assert rec.first_nonfinite() == (0, "layer 2")
    path = rec.to_csv(tmp_path / "run.csv")
    assert "0,layer 2,grad_norm,nan" in path.read_text()


def test_central_width_leaves_out_the_tails_and_says_what_was_wrong():
    edges = np.linspace(0.0, 1.0, 11)
    spread = Histogram(0, "a", edges, np.array([1, 0, 0, 24, 25, 25, 24, 0, 0, 1]))  # 100 values, 1 in each tail bin
    assert spread.central_width(0.98) == pytest.approx(0.4)   # bins 3..6
    assert spread.central_width(1.0) == pytest.approx(1.0)    # everything, outliers included
    assert spread.central_width(0.5) == pytest.approx(0.2)    # 25 below bin 4, 25 above bin 5
    spike = Histogram(3, "b", edges, np.array([0, 0, 0, 0, 0, 7, 0, 0, 0, 0]))
    assert spike.central_width() == pytest.approx(0.1)        # one bin: the resolution
    with pytest.raises(ValueError, match="share must be"):
        spread.central_width(0.0)
    with pytest.raises(ValueError, match="counted no values"):
        Histogram(0, "c", edges, np.zeros(10, dtype=int)).central_width()
