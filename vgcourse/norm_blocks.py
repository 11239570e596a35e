"""Transformer-style residual blocks, with LayerNorm after the sum, on the branch, or not at all.

Each block's branch is a transformer's position-wise MLP, ``F(h) = linear2(relu(linear1(h)))``;
where the block puts its ``nn.LayerNorm`` is its ``placement``:

* ``"post"`` — ``x ← LN(x + F(x))``, the original transformer (Vaswani et al., 2017);
* ``"pre"``  — ``x ← x + F(LN(x))``, with one more LN before the head (Xiong et al., 2020);
* ``"none"`` — ``x ← x + F(x)``, a plain residual block with no normalization.

:func:`block_stack` builds ``embed → blocks → (final LN) → head`` for classifying vectors such as
the digits. The vectors ``x_0`` (after ``embed``) ... ``x_L`` (after block L) are the *residual
stream* (:meth:`BlockStack.stream`). With ``zero_branches=True`` the last linear map of every
branch starts at zero (Goyal et al., 2017; Fixup, Zhang, Dauphin & Ma, 2019; SkipInit, De &
Smith, 2020), so every pre-LN or plain block starts as the identity.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vgcourse.validation import check_choice, check_int

PLACEMENTS = ("post", "pre", "none")
"""Where a :class:`NormBlock` puts its LayerNorm: after the sum, on the branch, nowhere."""


class NormBlock(nn.Module):
    """One residual block ``x ← LN(x + F(x))``, ``x + F(LN(x))`` or ``x + F(x)`` (``placement``),
    with ``F(h) = linear2(relu(linear1(h)))``."""

    def __init__(self, width: int, hidden: int, placement: str = "pre") -> None:
        super().__init__()
        check_int(width, "width", minimum=2)
        check_int(hidden, "hidden", minimum=1)
        self.placement = check_choice(placement, "placement", PLACEMENTS)
        self.norm = nn.LayerNorm(width) if placement != "none" else nn.Identity()
        self.linear1 = nn.Linear(width, hidden)
        self.linear2 = nn.Linear(hidden, width)

    def branch(self, h: Tensor) -> Tensor:
        """The residual branch ``F(h)``, the position-wise MLP."""
        return self.linear2(F.relu(self.linear1(h)))

    def forward(self, x: Tensor) -> Tensor:
        if self.placement == "post":
            return self.norm(x + self.branch(x))
        return x + self.branch(self.norm(x))


class BlockStack(nn.Module):
    """``embed``, the :class:`NormBlock` s ``blocks``, ``final`` (a LayerNorm for pre-LN, else the
    identity) and ``head``: a classifier of ``(batch, in_features)`` inputs."""

    def __init__(self, in_features: int, out_features: int, blocks: list[NormBlock]) -> None:
        super().__init__()
        width = blocks[0].linear1.in_features
        self.embed = nn.Linear(in_features, width)
        self.blocks = nn.ModuleList(blocks)
        self.final = nn.LayerNorm(width) if blocks[0].placement == "pre" else nn.Identity()
        self.head = nn.Linear(width, out_features)

    @property
    def placement(self) -> str:
        """Where the blocks put their LayerNorm, one of :data:`PLACEMENTS`."""
        return self.blocks[0].placement

    def stream(self, x: Tensor) -> list[Tensor]:
        """The residual stream ``[x_0, ..., x_L]``: ``embed(x)`` and the output of every block."""
        if x.dim() != 2 or x.shape[1] != self.embed.in_features:
            raise ValueError(f"expected input of shape (batch, {self.embed.in_features}), got {tuple(x.shape)}")
        states = [self.embed(x)]
        for block in self.blocks:
            states.append(block(states[-1]))
        return states

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.final(self.stream(x)[-1]))


def zero_branches_(model: nn.Module) -> nn.Module:
    """Set the weight and bias of every :class:`NormBlock` branch's last linear map (``linear2``)
    to zero, in place, and return ``model``. ``linear1`` keeps its random weights, so ``linear2``
    still receives a gradient and the branch can grow from zero.

    Raises:
        TypeError: if ``model`` is no module or holds no :class:`NormBlock`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    blocks = [m for m in model.modules() if isinstance(m, NormBlock)]
    if not blocks:
        raise TypeError(f"{type(model).__name__} holds no NormBlock whose branch could be zeroed")
    with torch.no_grad():
        for block in blocks:
            block.linear2.weight.zero_()
            block.linear2.bias.zero_()
    return model


def block_stack(
    in_features: int,
    out_features: int,
    depth: int,
    width: int,
    hidden: int | None = None,
    placement: str = "pre",
    zero_branches: bool = False,
    seed: int = 0,
) -> BlockStack:
    """Build a :class:`BlockStack` of ``depth`` blocks, initialized as Xiong et al. (2020) analyse:
    Xavier-normal weights (Glorot & Bengio, 2010), zero biases, LayerNorm scale 1 and shift 0.

    Args:
        in_features: size of each input vector.
        out_features: number of classes.
        depth: number of residual blocks L >= 1.
        width: size of the residual stream (>= 2: LayerNorm over one feature is always 0).
        hidden: width of each branch's hidden layer; default ``2 * width``.
        placement: one of :data:`PLACEMENTS`.
        zero_branches: start every branch's last linear map at zero (:func:`zero_branches_`).
        seed: the weights depend only on this seed; global random state is left untouched.

    Returns:
        a :class:`BlockStack`.
    """
    check_int(in_features, "in_features", minimum=1)
    check_int(out_features, "out_features", minimum=1)
    check_int(depth, "depth", minimum=1)
    check_int(width, "width", minimum=2)
    hidden = 2 * width if hidden is None else check_int(hidden, "hidden", minimum=1)
    check_choice(placement, "placement", PLACEMENTS)
    if not isinstance(zero_branches, bool):
        raise ValueError(f"zero_branches must be True or False, got {zero_branches!r}")
    check_int(seed, "seed", minimum=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BlockStack(in_features, out_features, [NormBlock(width, hidden, placement) for _ in range(depth)])
        for module in model.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight)
                nn.init.zeros_(module.bias)
    return zero_branches_(model) if zero_branches else model
