"""Curiosity: intrinsic rewards for real (2.1) and imagined (2.3) transitions, and the 2.6 update.

The pseudocode computes β·Cψ.intrinsic_reward(s, a, s′) inside both loops. Here it is computed once
per batch, after the loop: the module does not change during a collection or an imagination, so
the rewards are the same, and one batched pass replaces a pass per step. Intrinsic rewards are kept
apart from extrinsic ones (``Rollout.int_rewards``) and enter PPO's reward as r_ext + β·r_int, or
through a second value head (:func:`mix_intrinsic` decides, in one place).

Scale: the raw novelty of every module drifts as it learns, so intrinsic rewards are divided by a
running standard deviation of the non-episodic discounted intrinsic return (RND's normalisation),
updated on real data only; imagined intrinsic rewards use the same divisor.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

import gymnasium as gym
import numpy as np
import torch

from mbrl_ai.collect import Rollout
from mbrl_ai.config import CuriosityConfig
from mbrl_ai.core.optim import Optimizer
from mbrl_ai.imagine import ImaginedRollouts
from mbrl_ai.modules.curiosity import CURIOSITY, Curiosity
from mbrl_ai.modules.normalizer import RunningMeanStd
from mbrl_ai.modules.world_model import EnsembleWorldModel

D = TypeVar("D", Rollout, ImaginedRollouts)

# the curiosity module's weights are drawn from a generator seeded with the run's seed plus this
CURIOSITY_SEED_OFFSET = 7919


def build_curiosity(
    cfg: CuriosityConfig,
    obs_dim: int,
    action_space: gym.Space,
    world_model: EnsembleWorldModel | None,
    seed: int,
) -> Curiosity:
    """The module ``cfg.name`` names. Its weights come from their own seeded generator, so adding
    or removing curiosity leaves every other random draw of the run unchanged."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + CURIOSITY_SEED_OFFSET)
        return CURIOSITY[cfg.name].from_config(cfg, obs_dim, action_space, world_model)


class IntrinsicScaler:
    """Divides intrinsic rewards by the running std of per-env discounted intrinsic returns."""

    def __init__(self, n_envs: int, gamma: float) -> None:
        self.gamma = gamma
        self.returns = np.zeros(n_envs)
        self.rms = RunningMeanStd(())

    def update(self, rewards: torch.Tensor) -> None:
        """Fold in real intrinsic rewards ``[T, N]``; the returns never reset (non-episodic)."""
        running = np.empty(rewards.shape)
        for t, r in enumerate(rewards.double().cpu().numpy()):
            self.returns = self.gamma * self.returns + r
            running[t] = self.returns
        self.rms.update(torch.as_tensor(running))

    def scale(self, rewards: torch.Tensor) -> torch.Tensor:
        return self.rms.scale(rewards.double()).to(rewards.dtype)

    def state_dict(self) -> dict:
        return {
            "returns": torch.from_numpy(self.returns.copy()),
            "rms": self.rms.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.returns = state["returns"].numpy().copy()
        self.rms.load_state_dict(state["rms"])


def intrinsic_rewards(
    module: Curiosity, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """Raw intrinsic rewards for a batch of any leading shape ``[..., obs_dim]``."""
    lead = obs.shape[:-1]
    flat_actions = actions.reshape(-1, *actions.shape[len(lead) :])
    r = module.intrinsic_reward(
        obs.reshape(-1, obs.shape[-1]),
        flat_actions,
        next_obs.reshape(-1, next_obs.shape[-1]),
    )
    return r.reshape(lead)


def real_intrinsic_rewards(
    module: Curiosity, scaler: IntrinsicScaler, rollout: Rollout, device: torch.device
) -> torch.Tensor | None:
    """2.1: scaled intrinsic rewards ``[T, N]`` of a real rollout (``None`` while the module is
    warming up); then the rollout's next states join the module's input normalisation."""
    obs = torch.as_tensor(rollout.raw_obs, device=device)
    next_obs = torch.as_tensor(rollout.raw_next_obs, device=device)
    rewards = None
    if module.ready():
        raw = intrinsic_rewards(module, obs, rollout.actions.to(device), next_obs).cpu()
        scaler.update(raw)
        rewards = scaler.scale(raw)
    module.observe(next_obs.reshape(-1, next_obs.shape[-1]))
    return rewards


def imagined_intrinsic_rewards(
    module: Curiosity, scaler: IntrinsicScaler, imagined: ImaginedRollouts
) -> torch.Tensor | None:
    """2.3: scaled intrinsic rewards ``[H, R]`` on the model's predicted next states (0 on steps
    that did not happen); the divisor is the real data's, left unchanged."""
    if not module.ready():
        return None
    raw = intrinsic_rewards(
        module, imagined.raw_obs[:-1], imagined.actions, imagined.raw_obs[1:]
    ).cpu()
    return scaler.scale(raw).masked_fill(~imagined.valid.cpu(), 0.0)


def mix_intrinsic(data: D, int_rewards: torch.Tensor | None, beta: float, two_heads: bool) -> D:
    """How intrinsic rewards enter, in one place. One value head: into the reward that PPO
    optimises, r_ext + β·r_int. Two heads (``curiosity.intrinsic_head``): the reward stays r_ext
    and ``int_rewards`` carries r_int to 2.4, which adds β·A_int from the intrinsic head's own GAE.
    ``data`` is a real :class:`Rollout` or :class:`ImaginedRollouts`; ``None`` (the module is
    warming up) leaves it as it is."""
    if int_rewards is None:
        return data
    mixed = data.rewards + (0.0 if two_heads else beta) * int_rewards.to(data.rewards.device)
    return replace(data, rewards=mixed, int_rewards=int_rewards)


def curiosity_batch(
    rollout: Rollout,
    imagined: ImaginedRollouts,
    with_imagined: bool,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(s, a, s′) for 2.6: the real rollout's transitions, plus the last round's valid imagined
    ones when ``with_imagined``."""
    real = rollout.transitions()
    obs, actions, next_obs = (
        torch.as_tensor(x, device=device) for x in (real.obs, real.actions, real.next_obs)
    )
    if with_imagined:
        v = imagined.valid
        obs = torch.cat([obs, imagined.raw_obs[:-1][v].to(device)])
        actions = torch.cat([actions, imagined.actions[v].to(device, actions.dtype)])
        next_obs = torch.cat([next_obs, imagined.raw_obs[1:][v].to(device)])
    return obs, actions, next_obs


def intrinsic_stats(
    name: str, rewards: torch.Tensor | None, valid: torch.Tensor | None = None
) -> dict[str, float]:
    """Mean and std of scaled intrinsic rewards (over valid steps), or nothing when there are none."""
    if rewards is None:
        return {}
    r = rewards[valid.cpu()] if valid is not None else rewards.reshape(-1)
    if r.numel() == 0:
        return {}
    return {
        f"{name}_mean": float(r.mean()),
        f"{name}_std": float(r.std(unbiased=False)),
    }


def update_curiosity(
    module: Curiosity,
    optimizer: Optimizer | None,
    obs: torch.Tensor,
    actions: torch.Tensor,
    next_obs: torch.Tensor,
    epochs: int = 1,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """2.6: ``epochs`` shuffled passes of minibatch steps on the module's own loss over the given
    (s, a, s′); returns the mean ``curiosity_loss`` (0 for modules with nothing to train)."""
    if optimizer is None or not module.trainable_parameters():
        return {"curiosity_loss": 0.0}
    n, losses = obs.shape[0], []
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss = module.loss(obs[idx], actions[idx], next_obs[idx])
            assert loss is not None  # a module with trainable parameters has a loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    return {"curiosity_loss": float(np.mean(losses))}
