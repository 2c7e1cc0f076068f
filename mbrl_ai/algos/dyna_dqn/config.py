"""The ``DynaDQNConfig`` node of its algorithm: its keys, their declared ranges and its cross-key rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar

from mbrl_ai.config import Config
from mbrl_ai.core.ranges import (
    Each,
    Ge,
    Gt,
    In,
    OneOf,
    need,
    need_learning_starts,
    need_multiple_of_envs,
)
from mbrl_ai.modules.mlp import ACTIVATIONS


@dataclass
class DynaDQNConfig:
    """Deep Dyna (``algo=dyna_dqn``): a DQN (double Q-learning, target network, replay) whose
    minibatches mix real transitions with transitions imagined by the ensemble world model
    (``world_model.*``: refitted each iteration for ``world_model.train_steps`` steps, stopped
    early on the held-out MSE) from real states, ``imagined_per_step`` per real step; with 0 it is
    our plain DQN. Defaults: Stable-Baselines3's rl-zoo DQN for CartPole-v1. Discrete actions.
    Registered by ``algos/dyna_dqn.py``."""

    key: ClassVar[str] = "dyna_dqn"

    hidden: Annotated[list[int], Each(Ge(1))] = field(default_factory=lambda: [256, 256])
    """Widths of the Q-network's hidden layers."""
    activation: Annotated[str, OneOf(ACTIVATIONS)] = "relu"
    """Activation of the Q-network."""
    lr: Annotated[float, Gt(0.0)] = 2.3e-3
    """Adam learning rate of the Q-network."""
    batch_size: Annotated[int, Ge(1)] = 64
    """Transitions per gradient step."""
    buffer_size: Annotated[int, Ge(1)] = 100_000
    """Real transitions kept in the replay."""
    learning_starts: Annotated[int, Ge(0)] = 1000
    """Uniformly random actions, and no updates, for this many real steps."""
    train_freq: Annotated[int, Ge(1)] = 256
    """Real steps per iteration; each iteration ends with ``gradient_steps`` updates."""
    gradient_steps: Annotated[int, Ge(1)] = 128
    """Gradient steps per iteration (updates per real step: gradient_steps / train_freq)."""
    target_update_interval: Annotated[int, Ge(1)] = 10
    """Copy the Q-network into the target network every this many real steps."""
    exploration_fraction: Annotated[float, In(0.0, 1.0)] = 0.16
    """ε falls linearly from ``exploration_initial_eps`` to ``exploration_final_eps`` over this
    share of ``total_timesteps`` ..."""
    exploration_initial_eps: Annotated[float, In(0.0, 1.0)] = 1.0
    """... from this ..."""
    exploration_final_eps: Annotated[float, In(0.0, 1.0)] = 0.04
    """... to this, and stays there."""
    max_grad_norm: Annotated[float, Gt(0.0)] = 10.0
    """Global gradient-norm clip of each update."""
    double: bool = True
    """Double Q-learning: the online network picks the next action, the target network values it."""
    imagined_per_step: Annotated[int, Ge(0)] = 0
    """k: imagined transitions per real step, generated once per iteration after the model is
    refitted (0: plain DQN, no world model)."""
    imagined_horizon: Annotated[int, Ge(1)] = 1
    """Steps of each imagined rollout from a real state."""
    imagined_actions: Annotated[str, OneOf(("uniform", "policy"))] = "uniform"
    """Actions of the imagined rollouts: ``uniform`` (every action of a real state gets tried in
    the model) or ``policy`` (ε-greedy on the current Q-network)."""
    imagined_capacity: Annotated[int, Ge(1)] = 20_000
    """Imagined transitions kept (the newest)."""
    real_ratio: Annotated[float, In(0.0, 1.0, "(]")] = 0.5
    """Share of each minibatch drawn from the real replay once imagined transitions exist."""

    def check(self, c: Config) -> None:
        need_multiple_of_envs("dyna_dqn.train_freq", self.train_freq, c.n_envs)
        need(self.batch_size <= self.buffer_size, "dyna_dqn.batch_size", self.batch_size,
             f"must be <= dyna_dqn.buffer_size ({self.buffer_size})")  # fmt: skip
        need_learning_starts("dyna_dqn.learning_starts", self.learning_starts, c)
