"""GradientMonitor on architectures practitioners train (issue 15): attention, recurrent cells,
torch.compile. Each test failed on the monitor before the issue's fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vgcourse.monitor import GradientMonitor
from vgcourse.training import task_loss


def trainable_matrices(model: nn.Module) -> set[int]:
    return {id(p) for p in model.parameters() if p.requires_grad and p.dim() >= 2}


def covered(monitor: GradientMonitor) -> set[int]:
    return {id(weight) for weight in monitor._weights}


class TinyEncoder(nn.Module):
    """Token embedding, two post-LN transformer encoder layers, a classification head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(20, 16)
        layer = nn.TransformerEncoderLayer(16, nhead=2, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(tokens)).mean(dim=1))


def train_steps(model: nn.Module, inputs: list[torch.Tensor], targets: torch.Tensor, steps: int = 3,
                forward=None) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    forward = forward or model
    for _ in range(steps):
        optimizer.zero_grad()
        task_loss(forward(*inputs), targets).backward()
        optimizer.step()


def test_attention_projections_are_covered_in_forward_order() -> None:
    """Defect 5: MultiheadAttention never calls out_proj (it was ordered after the head) and its
    in_proj_weight (Q, K, V) was not monitored."""
    model = TinyEncoder()
    tokens = torch.randint(0, 20, (4, 7), generator=torch.Generator().manual_seed(0))
    with GradientMonitor(model) as monitor:
        train_steps(model, [tokens], torch.tensor([0, 1, 2, 0]))
    block = ["self_attn.in_proj_weight", "self_attn.out_proj", "linear1", "linear2"]
    assert monitor.layer_names == ["embed", *(f"encoder.layers.{i}.{n}" for i in range(2) for n in block), "head"]
    assert covered(monitor) == trainable_matrices(model)
    in_proj = monitor.layer_names.index("encoder.layers.0.self_attn.in_proj_weight")
    expected = model.encoder.layers[0].self_attn.in_proj_weight.grad.norm().item()
    assert monitor.grad_norms()[-1, in_proj] == pytest.approx(expected, rel=1e-5)


def test_encoder_decoder_transformer_cross_attention_in_forward_order() -> None:
    torch.manual_seed(0)
    model = nn.Transformer(8, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16,
                           dropout=0.0, batch_first=True)
    source, target = torch.randn(2, 5, 8), torch.randn(2, 4, 8)
    with GradientMonitor(model) as monitor:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        model(source, target).square().mean().backward()
        optimizer.step()
    attention = ["in_proj_weight", "out_proj"]
    assert monitor.layer_names == [
        *(f"encoder.layers.0.self_attn.{n}" for n in attention), "encoder.layers.0.linear1", "encoder.layers.0.linear2",
        *(f"decoder.layers.0.self_attn.{n}" for n in attention),
        *(f"decoder.layers.0.multihead_attn.{n}" for n in attention), "decoder.layers.0.linear1",
        "decoder.layers.0.linear2"]
    assert covered(monitor) == trainable_matrices(model)


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_every_recurrent_matrix_is_covered(cell: type[nn.RNNBase]) -> None:
    """Defect 5: weight_ih_l{k} of LSTM and GRU was not monitored."""

    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.rnn = cell(3, 8, num_layers=2, batch_first=True)
            self.out = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.rnn(x)[0][:, -1])

    model = Tagger()
    x = torch.randn(4, 6, 3, generator=torch.Generator().manual_seed(0))
    with GradientMonitor(model) as monitor:
        train_steps(model, [x], torch.tensor([0, 1, 1, 0]))
    assert monitor.layer_names == ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.weight_ih_l1", "rnn.weight_hh_l1", "out"]
    assert covered(monitor) == trainable_matrices(model)
    expected = model.rnn.weight_ih_l1.grad.norm().item()
    assert monitor.grad_norms()[-1, 2] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("hist_every", [1, 2, 50])
def test_a_compiled_model_is_traced_once_not_at_every_step(hist_every: int) -> None:
    """Defect 4: a hook read the changing step count, so torch.compile recompiled at every step
    until its limit of 8 graphs, then ran eagerly."""
    graphs = []

    def counting_backend(graph_module: torch.fx.GraphModule, example_inputs: list) -> object:
        graphs.append(graph_module)
        return graph_module.forward

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    eager = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    eager.load_state_dict(model.state_dict())
    compiled = torch.compile(model, backend=counting_backend)
    x, y = torch.randn(16, 8, generator=torch.Generator().manual_seed(1)), torch.arange(16) % 3
    with GradientMonitor(compiled, hist_every=hist_every) as monitor, GradientMonitor(eager) as reference:
        train_steps(model, [x], y, steps=12, forward=compiled)
        train_steps(eager, [x], y, steps=12)
    assert len(graphs) <= 2  # the first forward, then one without the layer-order bookkeeping
    assert monitor.steps == 12 and monitor.layer_names == ["0 (Linear)", "2 (Linear)", "4 (Linear)"]
    torch.testing.assert_close(monitor.grad_norms(), reference.grad_norms(), rtol=1e-4, atol=0)
    torch.testing.assert_close(monitor.activation_means(), reference.activation_means(), rtol=1e-4, atol=1e-7,
                               equal_nan=True)
    assert len(monitor.histograms("activation")) == 2 * len(range(0, 12, hist_every))


def test_layers_are_chosen_by_name_pattern_or_module_class() -> None:
    model = TinyEncoder()
    everything = GradientMonitor(model).layer_names
    attention_only = GradientMonitor(model, include="*self_attn*").layer_names
    assert attention_only == [name for name in everything if "self_attn" in name] and len(attention_only) == 4
    no_embedding = GradientMonitor(model, exclude=[nn.Embedding, "head"]).layer_names
    assert no_embedding == everything[1:-1]
    both = GradientMonitor(model, include=nn.Linear, exclude="encoder.layers.1.*").layer_names
    assert both == ["encoder.layers.0.self_attn.out_proj", "encoder.layers.0.linear1", "encoder.layers.0.linear2", "head"]
    with pytest.raises(ValueError, match=r"include \['decoder\*'\] matched no trainable layer; the layers are"):
        GradientMonitor(model, include="decoder*")
    with pytest.raises(TypeError, match="include must be a layer-name pattern"):
        GradientMonitor(model, include=3)
    with pytest.raises(ValueError, match="leave no layer"):
        GradientMonitor(model, include="head", exclude=nn.Linear)


def test_a_hugging_face_gpt2_is_covered_in_forward_order() -> None:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=2, n_head=2)
    model = transformers.GPT2LMHeadModel(config)
    tokens = torch.randint(0, 50, (2, 8), generator=torch.Generator().manual_seed(0))
    with GradientMonitor(model) as monitor:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        for _ in range(2):
            optimizer.zero_grad()
            model(tokens, labels=tokens).loss.backward()
            optimizer.step()
    block = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]
    assert monitor.layer_names == ["transformer.wte", "transformer.wpe",
                                   *(f"transformer.h.{i}.{n}" for i in range(2) for n in block)]  # lm_head is wte, tied
    assert covered(monitor) == trainable_matrices(model)
    assert np.isfinite(monitor.grad_norms()).all() and (monitor.grad_norms() > 0).all()


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock, in plain torch: one ReLU module used twice, the second
    after the residual sum, with a downsample branch that runs after conv2."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(2 * channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(2 * channels, 2 * channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * channels)
        self.downsample = nn.Sequential(nn.Conv2d(channels, 2 * channels, 1, stride=2, bias=False),
                                        nn.BatchNorm2d(2 * channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = self.downsample(x)
        return self.relu(out + identity)


def test_the_relu_after_a_residual_sum_belongs_to_conv2_not_the_downsample() -> None:
    """Defect 10: the ReLU after the add was credited to downsample.0, the last layer to run."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), BasicBlock(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(8, 3))
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with GradientMonitor(model) as monitor:
        train_steps(model, [x], torch.tensor([0, 1, 2, 0]), steps=2)
    names = monitor.layer_names
    assert names == ["0 (Conv2d)", "2.conv1", "2.conv2", "2.downsample.0 (Conv2d)", "5 (Linear)"]
    has_stats = dict(zip(names, np.isfinite(monitor.activation_means()[-1])))
    assert has_stats == {"0 (Conv2d)": True, "2.conv1": True, "2.conv2": True, "2.downsample.0 (Conv2d)": False,
                         "5 (Linear)": False}
    dead = monitor.dead_fractions()[-1]
    assert np.isfinite(dead[:3]).all()  # ReLU: dead units are counted


@pytest.mark.parametrize("activation", [nn.SiLU, nn.Hardswish, nn.ReLU6, nn.ELU, nn.Mish])
def test_activations_beyond_the_course_get_statistics(activation: type[nn.Module]) -> None:
    """Defect 10: only five exact classes counted; SiLU or Hardswish networks had no statistics."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), activation(), nn.Linear(16, 16), activation(), nn.Linear(16, 3))
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        first = model[1](model[0](x))  # the first step's forward pass, computed independently
    with GradientMonitor(model) as monitor:
        train_steps(model, [x], torch.arange(32) % 3, steps=2)
    means, stds = monitor.activation_means(), monitor.activation_stds()
    assert np.isfinite(means[:, :2]).all() and np.isnan(means[:, 2]).all()
    assert means[0, 0] == pytest.approx(float(first.mean()), rel=1e-5, abs=1e-7)
    assert stds[0, 0] == pytest.approx(float(first.std()), rel=1e-5)
    assert np.isfinite(monitor.dead_fractions()[:, :2]).all() == (activation is nn.ReLU6)


def test_hugging_face_activation_modules_are_seen() -> None:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=2, n_head=2)
    model = transformers.GPT2LMHeadModel(config)  # its MLP: c_fc, NewGELUActivation, c_proj
    tokens = torch.randint(0, 50, (2, 8), generator=torch.Generator().manual_seed(0))
    with GradientMonitor(model) as monitor:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        optimizer.zero_grad()
        model(tokens, labels=tokens).loss.backward()
        optimizer.step()
    with_stats = [name for name, mean in zip(monitor.layer_names, monitor.activation_means()[0]) if np.isfinite(mean)]
    assert with_stats == ["transformer.h.0.mlp.c_fc", "transformer.h.1.mlp.c_fc"]


class FunctionalNet(nn.Module):
    """Activations as functions, three ways: F.relu, a tensor method, a torch function."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.c, self.out = nn.Linear(6, 16), nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.relu(self.a(x))
        x = self.b(x).tanh()
        return self.out(torch.sigmoid(self.c(x)))


def test_functional_activations_are_seen_when_asked() -> None:
    """Defect 10: an activation called as F.relu in forward had no statistics."""
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(0))
    model = FunctionalNet()
    with torch.no_grad():
        first = [torch.relu(model.a(x))]
        first += [model.b(first[0]).tanh()]
        first += [torch.sigmoid(model.c(first[1]))]
    with GradientMonitor(model, functional_activations=True) as monitor:
        train_steps(model, [x], torch.arange(32) % 3, steps=2)
    means = monitor.activation_means()
    np.testing.assert_allclose(means[0, :3], [float(t.mean()) for t in first], rtol=1e-5)
    assert np.isnan(means[:, 3]).all()
    assert np.isfinite(monitor.dead_fractions()[:, 0]).all() and np.isfinite(monitor.saturated_fractions()[:, 1:3]).all()
    assert torch.overrides._get_current_function_mode_stack() == []  # the mode is gone after each forward
    with GradientMonitor(FunctionalNet()) as off:  # off by default: no function is watched
        train_steps(off.model, [x], torch.arange(32) % 3, steps=1)
    assert np.isnan(off.activation_means()).all()


def test_functional_watching_keeps_modules_credits_and_survives_a_failed_forward() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), BasicBlock(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(8, 3))
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with GradientMonitor(model, functional_activations=True) as monitor:
        train_steps(model, [x], torch.tensor([0, 1, 2, 0]), steps=1)
        with pytest.raises(RuntimeError):
            model(torch.randn(4, 5, 8, 8))  # wrong channels: the forward raises halfway
        assert torch.overrides._get_current_function_mode_stack() == []
        train_steps(model, [x], torch.tensor([0, 1, 2, 0]), steps=1)
    has_stats = np.isfinite(monitor.activation_means()).tolist()
    assert has_stats == [[True, True, True, False, False]] * 2  # nn.ReLU's own F.relu is not counted twice
