"""The MLP builder shared by every network."""

from __future__ import annotations

import math
from collections.abc import Callable

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


# activations as the functions their modules call, for :func:`fast_forward`
_FUNCTIONS = {nn.Tanh: torch.tanh, nn.ReLU: torch.relu, nn.SiLU: nn.functional.silu}


def fast_forward(net: nn.Sequential) -> Callable[[torch.Tensor], torch.Tensor]:
    """``net``'s forward as plain function calls on its current parameters: the same kernels on
    the same tensors, so the same numbers, without ``nn.Module.__call__``'s bookkeeping (which
    costs more than the maths for a one-row batch of a small MLP). Hooks are not run. Parameters
    updated in place (optimiser steps, ``load_state_dict``) are seen; rebuild it after replacing
    a parameter tensor."""
    steps: list[Callable[[torch.Tensor], torch.Tensor]] = []
    for layer in net:
        if isinstance(layer, nn.Linear):
            steps.append(_linear(layer.weight, layer.bias))
        else:
            steps.append(_FUNCTIONS.get(type(layer), layer.forward))

    def forward(x: torch.Tensor) -> torch.Tensor:
        for step in steps:
            x = step(x)
        return x

    return forward


def _linear(
    weight: torch.Tensor, bias: torch.Tensor | None
) -> Callable[[torch.Tensor], torch.Tensor]:
    def linear(x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, weight, bias)

    return linear


def as_float_tensor(x: object, device: torch.device) -> torch.Tensor:
    """A float32 tensor on ``device`` from a numpy array or tensor, without copying when possible."""
    return torch.as_tensor(x, dtype=torch.float32, device=device)
