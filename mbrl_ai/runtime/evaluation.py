"""Deterministic evaluation of a policy on separate envs (the run's evaluation schedule and the
``python -m mbrl_ai.evaluate`` entry point both use it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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

    Episode ``j`` starts from ``reset(seed=seed + j)`` on whichever env is free, and the policy
    acts on each env's observation alone (a batch of one: a matrix product's rounding depends on
    the batch size), with a copy of its own where it has state or draws (``fork``). So the
    returns do not depend on how many envs run together, and successive evaluations of one run
    start from the same states and differ only by the policy (an env that changes with its own
    step count, a maze with ``change_at``, is the exception near its change). A recurrent policy is started at
    each episode's first step. ``stop`` is asked before every step: if it says yes,
    :class:`EvaluationStopped` is raised (a run that got a stop signal does not finish a long
    evaluation first).
    """
    device = device or torch.device("cpu")
    k = envs.num_envs
    space = envs.single_action_space
    returns = np.zeros(n_episodes)
    running = np.zeros(k)
    episode = np.minimum(np.arange(k), n_episodes)  # the episode each env runs; n_episodes: idle
    following = min(k, n_episodes)  # the next episode to start
    lanes: list[Policy] = [_lane(actor) for _ in range(min(k, n_episodes))]
    obs, _ = envs.reset(seed=seed)  # env i: seed + i
    with torch.no_grad():
        while (episode < n_episodes).any():
            if stop is not None and stop():
                raise EvaluationStopped
            active = [int(i) for i in np.flatnonzero(episode < n_episodes)]
            obs_t = torch.as_tensor(obs.reshape(k, -1), dtype=torch.float32, device=device)
            if obs_rms is not None:
                obs_t = obs_rms.normalize(obs_t).float()
            rows = {i: lanes[i].mode(obs_t[i : i + 1]).cpu().numpy()[0] for i in active}
            idle = rows[active[0]]  # what an idle env is given (its steps are not counted)
            action = np.stack([rows.get(i, idle) for i in range(k)])
            if not actor.discrete:
                assert isinstance(space, gym.spaces.Box)
                action = np.clip(action, space.low, space.high)
            obs, reward, term, trunc, _ = envs.step(action)
            running += reward
            ended = [i for i in active if term[i] or trunc[i]]
            restart = np.zeros(k, dtype=bool)
            for i in ended:
                returns[episode[i]] = running[i]
                running[i] = 0.0
                episode[i] = following
                if following < n_episodes:
                    following += 1
                    restart[i] = True
                    lanes[i] = _lane(actor)
            if restart.any():
                seeds: Any = [int(seed + episode[i]) if restart[i] else None for i in range(k)]
                obs, _ = envs.reset(seed=seeds, options={"reset_mask": restart})
    return returns


def _lane(actor: Policy) -> Policy:
    """The policy for one episode: the actor itself, or its ``fork`` (with state or draws of its
    own), started for one env."""
    fork = getattr(actor, "fork", None)
    lane = fork() if callable(fork) else actor
    if isinstance(lane, RecurrentPolicy):
        lane.start(1)
    return lane
