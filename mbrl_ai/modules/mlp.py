"""The MLP builder shared by every network."""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
}


def build_mlp(
    in_dim: int,
    hidden: list[int],
    out_dim: int,
    activation: str,
    ortho_init: bool = False,
    out_gain: float = 1.0,
) -> nn.Sequential:
    """Linear layers of widths ``hidden`` with ``activation`` between, then a linear head.

    With ``ortho_init`` the hidden layers get orthogonal weights with gain sqrt(2) and the head gets
    ``out_gain`` (small for a policy head so the initial policy is near uniform), biases zero.
    """
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers += [nn.Linear(last, width), ACTIVATIONS[activation]()]
        last = width
    layers.append(nn.Linear(last, out_dim))
    net = nn.Sequential(*layers)
    if ortho_init:
        linears = [m for m in net if isinstance(m, nn.Linear)]
        for i, layer in enumerate(linears):
            gain = out_gain if i == len(linears) - 1 else math.sqrt(2.0)
            nn.init.orthogonal_(layer.weight, gain=gain)
            nn.init.zeros_(layer.bias)
    return net


def as_float_tensor(x: object, device: torch.device) -> torch.Tensor:
    """A float32 tensor on ``device`` from a numpy array or tensor, without copying when possible."""
    return torch.as_tensor(x, dtype=torch.float32, device=device)
