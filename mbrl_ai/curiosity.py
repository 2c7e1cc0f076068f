"""2.6 Curiosity module update: one optimiser step on the module's own loss, if it has one."""

from __future__ import annotations

import torch

from mbrl_ai.modules.curiosity import NoCuriosity


def update_curiosity(
    module: NoCuriosity,
    optimizer: torch.optim.Optimizer | None,
    obs: torch.Tensor,
    actions: torch.Tensor,
    next_obs: torch.Tensor,
) -> dict[str, float]:
    """Train the curiosity module on (s, a, s') transitions; returns ``curiosity_loss``."""
    loss = module.loss(obs, actions, next_obs)
    if loss is None or optimizer is None:
        return {"curiosity_loss": 0.0}
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"curiosity_loss": float(loss.detach())}
