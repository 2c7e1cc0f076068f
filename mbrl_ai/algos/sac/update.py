"""The SAC agent and one gradient step of it (Haarnoja et al., 2018, with automatic entropy tuning).

Per step, on a batch of (s, a, r, s', terminated), in the order Stable-Baselines3 uses:

    α loss      −log α · (log π(ã|s) + H̄)                     ã ~ π(·|s), H̄ = −|A| by default
    critic      ½ Σᵢ (Qᵢ(s, a) − y)²,  y = r + γ(1 − terminated)(minᵢ Q̄ᵢ(s', ã') − α log π(ã'|s'))
    actor       α log π(ã|s) − minᵢ Qᵢ(s, ã)
    target      Q̄ ← τ Q + (1 − τ) Q̄

Actions are normalised to [-1, 1] (``modules/sac_nets.py``).
"""

from __future__ import annotations

import copy
import math

import gymnasium as gym
import torch
from torch import nn

from mbrl_ai.core.optim import Optimizer
from mbrl_ai.modules.sac_nets import SquashedGaussianActor, TwinQ


class SACAgent(nn.Module):
    """Actor, twin critic, its slow-moving target copy and the log entropy coefficient."""

    def __init__(
        self,
        obs_dim: int,
        action_space: gym.spaces.Box,
        hidden: list[int],
        activation: str,
        init_alpha: float,
        target_entropy: float | None,
    ) -> None:
        super().__init__()
        self.actor = SquashedGaussianActor(obs_dim, action_space, hidden, activation)
        self.critic = TwinQ(obs_dim, self.actor.action_dim, hidden, activation)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(init_alpha)))
        self.target_entropy = (
            float(-self.actor.action_dim) if target_entropy is None else float(target_entropy)
        )


def sac_update(
    agent: SACAgent,
    actor_optimizer: Optimizer,
    critic_optimizer: Optimizer,
    alpha_optimizer: Optimizer | None,
    obs: torch.Tensor,
    actions: torch.Tensor,
    rewards: torch.Tensor,
    next_obs: torch.Tensor,
    terminated: torch.Tensor,
    gamma: float,
    tau: float,
) -> torch.Tensor:
    """One SAC step; returns the detached [critic loss, actor loss, α, entropy] (no sync)."""
    new_actions, log_prob = agent.actor.sample(obs)
    alpha = agent.log_alpha.exp().detach()
    if alpha_optimizer is not None:  # automatic entropy tuning
        alpha_loss = -(agent.log_alpha * (log_prob + agent.target_entropy).detach()).mean()
        alpha_optimizer.zero_grad(set_to_none=True)
        alpha_loss.backward()
        alpha_optimizer.step()

    with torch.no_grad():
        next_actions, next_log_prob = agent.actor.sample(next_obs)
        q1_t, q2_t = agent.critic_target(next_obs, next_actions)
        soft_v = torch.min(q1_t, q2_t) - alpha * next_log_prob
        target = rewards + gamma * (1.0 - terminated) * soft_v
    q1, q2 = agent.critic(obs, actions)
    critic_loss = 0.5 * ((q1 - target).pow(2).mean() + (q2 - target).pow(2).mean())
    critic_optimizer.zero_grad(set_to_none=True)
    critic_loss.backward()
    critic_optimizer.step()

    # the actor loss moves the actor only: with the critic frozen, backward computes no critic
    # weight gradients (the next critic step would discard them)
    agent.critic.requires_grad_(False)
    try:
        q1_pi, q2_pi = agent.critic(obs, new_actions)
        actor_loss = (alpha * log_prob - torch.min(q1_pi, q2_pi)).mean()
        actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
    finally:
        agent.critic.requires_grad_(True)
    actor_optimizer.step()

    with torch.no_grad():  # one fused call for all target parameters
        torch._foreach_lerp_(
            list(agent.critic_target.parameters()), list(agent.critic.parameters()), tau
        )
    return torch.stack(
        [critic_loss.detach(), actor_loss.detach(), alpha, -log_prob.detach().mean()]
    )
