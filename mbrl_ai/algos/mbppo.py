"""Model-Based PPO with Adaptive Imagination (``algo=mbppo``), the main algorithm.

Its loop is ``mbrl_ai/trainer.py``, the pseudocode's sections 2.1–2.8 in order; this module only
registers it. ``algos/ppo.py`` is the same loop without 2.2, 2.3, 2.6 and 2.7.
"""

from __future__ import annotations

import gymnasium as gym

from mbrl_ai.agent import check_ppo_batch, load_ppo_policy
from mbrl_ai.algos import AlgorithmSpec, register
from mbrl_ai.config import Config
from mbrl_ai.trainer import train_mbppo


def check_mbppo(cfg: Config) -> None:
    """A minibatch fits in the real batch plus the most imagination can add: max_planning_rollouts
    rollouts as deep as the deepest imagination mode goes."""
    depth = max(cfg.planning_horizon, cfg.imagination.max_horizon)
    check_ppo_batch(cfg, imagined=cfg.max_planning_rollouts * depth)


register(
    AlgorithmSpec(
        name="mbppo",
        train=train_mbppo,
        load_policy=load_ppo_policy,
        action_spaces=(gym.spaces.Discrete, gym.spaces.Box),
        world_model=True,
        curiosity=True,
        check=check_mbppo,
        smoke=(
            "env=CartPole-v1",
            "total_timesteps=1024",
            "n_envs=2",
            "n_real_steps=256",
            "batch_size=64",
            "n_epochs=2",
            "eval_every=512",
            "eval_episodes=2",
            "checkpoint_every=512",
            "world_model.train_steps=10",
            "curiosity.warmup_steps=0",
        ),
    )
)
