"""Model-Based PPO with Adaptive Imagination (``algo=mbppo``), the main algorithm.

Its loop is ``mbrl_ai/trainer.py``, the pseudocode's sections 2.1–2.8 in order; this module only
registers it. ``algos/ppo.py`` is the same loop without 2.2, 2.3, 2.6 and 2.7.
"""

from __future__ import annotations

import gymnasium as gym

from mbrl_ai.agent import load_ppo_policy
from mbrl_ai.algos import AlgorithmSpec, register
from mbrl_ai.trainer import train_mbppo

register(
    AlgorithmSpec(
        name="mbppo",
        train=train_mbppo,
        load_policy=load_ppo_policy,
        action_spaces=(gym.spaces.Discrete, gym.spaces.Box),
        world_model=True,
        curiosity=True,
    )
)
