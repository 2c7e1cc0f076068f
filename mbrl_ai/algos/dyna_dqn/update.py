"""One DQN gradient step: the temporal-difference loss of a minibatch against a target network.

    target = r + γ (1 − terminated) Q_target(s', a*),  a* = argmax_a Q(s', a) (double Q-learning)
                                                            or argmax_a Q_target(s', a) (plain DQN)
    loss   = Huber(Q(s, a), target)                     (smooth L1, as Stable-Baselines3's DQN)

Gradients are clipped to a global norm. A truncated transition (time limit) has terminated = 0,
so it is bootstrapped from its true last observation.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from mbrl_ai.core.buffers import TensorBatch
from mbrl_ai.core.optim import Optimizer, clip_grad_norm
from mbrl_ai.modules.q_network import QNetwork


def dqn_update(
    q_net: QNetwork,
    target_net: QNetwork,
    optimizer: Optimizer,
    batch: TensorBatch,
    gamma: float,
    double: bool,
    max_grad_norm: float,
) -> torch.Tensor:
    """One step; returns ``[loss, mean Q(s, a)]`` (detached, so the caller syncs once)."""
    obs, actions, rewards, next_obs, terminated = batch
    with torch.no_grad():
        next_target = target_net(next_obs)
        if double:
            best = q_net(next_obs).argmax(-1, keepdim=True)
            next_value = next_target.gather(-1, best).squeeze(-1)
        else:
            next_value = next_target.max(-1).values
        target = rewards + gamma * (1.0 - terminated) * next_value
    q = q_net(obs).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    loss = F.smooth_l1_loss(q, target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    clip_grad_norm(q_net.parameters(), max_grad_norm)
    optimizer.step()
    return torch.stack([loss.detach(), q.detach().mean()])
