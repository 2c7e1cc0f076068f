"""Deterministic evaluation of a policy on separate envs (the run's evaluation schedule and the
``python -m mbrl_ai.evaluate`` entry point both use it)."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv

from mbrl_ai.modules import RunningMeanStd
from mbrl_ai.modules.actor import Policy, RecurrentPolicy

# evaluation envs are seeded with the run's seed plus this, so that their episodes are not the
# training envs' (the run's schedule and ``python -m mbrl_ai.evaluate`` use the same seeds)
EVAL_SEED_OFFSET = 10_000


class EvaluationStopped(Exception):
    """``stop()`` said yes between two steps of an evaluation; its episodes are dropped."""


def evaluate_policy(
    actor: Policy,
    envs: VectorEnv,
    n_episodes: int,
    seed: int,
    obs_rms: RunningMeanStd | None = None,
    device: torch.device | None = None,
    stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Returns of ``n_episodes`` episodes with deterministic actions, spread over the vector env.

    Every call resets the envs with ``seed``, so successive evaluations of one run start from the
    same states and differ only by the policy. A recurrent policy (a ``RecurrentPolicy``,
    e.g. Dreamer's) is started before the first step and told where
    episodes end. ``stop`` is asked before every step: if it says yes, :class:`EvaluationStopped`
    is raised (a run that got a stop signal does not finish a long evaluation first).
    """
    device = device or torch.device("cpu")
    k = envs.num_envs
    quota = np.array([n_episodes // k + (i < n_episodes % k) for i in range(k)])
    finished: list[list[float]] = [[] for _ in range(k)]
    running = np.zeros(k)
    obs, _ = envs.reset(seed=seed)
    space = envs.single_action_space
    if isinstance(actor, RecurrentPolicy):
        actor.start(k)
    with torch.no_grad():
        while any(len(f) < q for f, q in zip(finished, quota, strict=True)):
            if stop is not None and stop():
                raise EvaluationStopped
            obs_t = torch.as_tensor(obs.reshape(k, -1), dtype=torch.float32, device=device)
            if obs_rms is not None:
                obs_t = obs_rms.normalize(obs_t).float()
            action = actor.mode(obs_t).cpu().numpy()
            if not actor.discrete:
                assert isinstance(space, gym.spaces.Box)
                action = np.clip(action, space.low, space.high)
            obs, reward, term, trunc, _ = envs.step(action)
            running += reward
            if isinstance(actor, RecurrentPolicy):
                actor.reset_state(term | trunc)
            for i in np.flatnonzero(term | trunc):
                if len(finished[i]) < quota[i]:
                    finished[i].append(float(running[i]))
                running[i] = 0.0
    return np.array([r for f in finished for r in f])
