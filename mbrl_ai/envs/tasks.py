"""Tasks the package registers besides the conditions: a continuous-action CartPole.

``mbrl_ai/CartPoleContinuous-v0`` is CartPole-v1's physics with a Box action a ∈ [−1, 1] pushing
the cart with a·10 N, reward 1 per step and 200-step episodes (the variant PETS and mbrl-lib use),
solved at 195.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv


class ContinuousCartPole(CartPoleEnv):
    """CartPole whose push is ``action[0] · force_mag`` instead of ±force_mag."""

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode=render_mode)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        assert self.state is not None, "call reset before step"
        force = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        force *= self.force_mag
        x, x_dot, theta, theta_dot = self.state
        cos, sin = math.cos(theta), math.sin(theta)
        # the same Euler step as CartPole-v1
        temp = (force + self.polemass_length * theta_dot**2 * sin) / self.total_mass
        theta_acc = (self.gravity * sin - cos * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * cos**2 / self.total_mass)
        )
        x_acc = temp - self.polemass_length * theta_acc * cos / self.total_mass
        x, x_dot = x + self.tau * x_dot, x_dot + self.tau * x_acc
        theta, theta_dot = theta + self.tau * theta_dot, theta_dot + self.tau * theta_acc
        self.state = np.array((x, x_dot, theta, theta_dot), dtype=np.float64)
        terminated = bool(abs(x) > self.x_threshold or abs(theta) > self.theta_threshold_radians)
        if self.render_mode == "human":
            self.render()
        return np.array(self.state, dtype=np.float32), 1.0, terminated, False, {}


def register_tasks() -> None:
    if "mbrl_ai/CartPoleContinuous-v0" not in gym.registry:
        gym.register(
            "mbrl_ai/CartPoleContinuous-v0",
            entry_point="mbrl_ai.envs.tasks:ContinuousCartPole",
            max_episode_steps=200,
            reward_threshold=195.0,
        )


register_tasks()
