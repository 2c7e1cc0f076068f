"""πθ: the policy network. Categorical for Discrete actions, diagonal Gaussian for Box actions.

The distributions are written out (log-softmax, Gaussian log-density) instead of going through
``torch.distributions``: the maths is two lines each, and skipping the distribution objects and
their argument validation makes the per-step collection call several times cheaper.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from mbrl_ai.modules.mlp import build_mlp

_LOG_2PI = math.log(2.0 * math.pi)


class Policy(Protocol):
    """What evaluation needs of any trained actor (PPO's, SAC's ...): deterministic actions for a
    batch of policy inputs, and whether they are discrete (else they are clipped to the bounds).

    A policy with random draws of its own (a planner's samples) may also have ``fork()``: a copy
    for one evaluation episode, sharing the networks, with its own generator started afresh, so
    that an episode's actions do not depend on the other episodes run beside it."""

    discrete: bool

    def mode(self, obs: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class RecurrentPolicy(Policy, Protocol):
    """A policy with a state across steps (Dreamer's latent state): started for ``n`` envs
    before the first step, and told after each step where episodes ended."""

    def start(self, n: int) -> None: ...

    def reset_state(self, done: np.ndarray) -> None: ...

    def fork(self) -> RecurrentPolicy:
        """A copy for one more env: the same networks, its own state and generator."""
        ...


class Actor(nn.Module):
    """A policy over a Discrete or Box action space.

    ``sample`` and ``mode`` act; ``evaluate`` gives log-probabilities and entropies of given
    actions for the PPO loss. Box actions are unbounded samples; the env layer clips them to the
    action bounds, and log-probabilities refer to the unclipped sample (as SB3 and CleanRL do).
    """

    def __init__(
        self,
        obs_dim: int,
        action_space: gym.Space,
        hidden: list[int],
        activation: str,
        ortho_init: bool,
        log_std_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if isinstance(action_space, gym.spaces.Discrete):
            out_dim = int(action_space.n)
        else:
            assert action_space.shape is not None  # Box: the only other action space supported
            out_dim = int(math.prod(action_space.shape))
            # state-independent log std, as in PPO's original continuous-control setup
            self.log_std = nn.Parameter(torch.full((out_dim,), float(log_std_init)))
        self.net = build_mlp(obs_dim, hidden, out_dim, activation, ortho_init, out_gain=0.01)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, n_actions]`` (Discrete) or Gaussian means ``[B, action_dim]`` (Box)."""
        return self.net(obs)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A stochastic action and its log-probability: ``[B]`` long / ``[B, d]`` float, and ``[B]``."""
        return self.sample_from(self.net(obs))

    def sample_from(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`sample` given the network's output ``out`` (logits or means)."""
        if self.discrete:
            log_p = torch.log_softmax(out, dim=-1)
            # Gumbel-max with Gumbel noise written as −log E, E ~ Exp(1): an exact categorical
            # sample, several times cheaper than torch.multinomial on tiny batches
            action = (log_p - torch.empty_like(log_p).exponential_().log()).argmax(-1)
            return action, log_p.gather(-1, action.unsqueeze(-1)).squeeze(-1)
        action = out + torch.randn_like(out) * self.log_std.exp()
        return action, self._gaussian_log_prob(out, action)

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action used for evaluation: argmax or the Gaussian mean."""
        out = self.net(obs)
        return out.argmax(-1) if self.discrete else out

    def evaluate(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability ``[B]`` and entropy ``[B]`` of ``actions`` under the current policy."""
        out = self.net(obs)
        if self.discrete:
            log_p = torch.log_softmax(out, dim=-1)
            entropy = -(log_p.exp() * log_p).sum(-1)
            return log_p.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1), entropy
        entropy = (0.5 + 0.5 * _LOG_2PI + self.log_std).sum().expand(out.shape[0])
        return self._gaussian_log_prob(out, actions), entropy

    def _gaussian_log_prob(self, mean: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        z = (action - mean) * torch.exp(-self.log_std)
        return (-0.5 * z.pow(2) - self.log_std - 0.5 * _LOG_2PI).sum(-1)
