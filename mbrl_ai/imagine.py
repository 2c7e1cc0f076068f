"""2.3 Adaptive imagination: how many rollouts, how deep, all advanced as one batch.

Breadth (the pseudocode): the number of rollouts is the confidence linearly mapped from
[confidence_thresh, 1] to [min_planning_rollouts, max_planning_rollouts], clamped. Depth (seed
003): H = clip(H_min, H_max, H_base·exp(−k·Var)), with Var the ensemble's disagreement at the start
states. ``imagination.mode`` picks ``breadth`` (count adapts, H = planning_horizon), ``depth`` (H
adapts, count = max_planning_rollouts), ``both``, or ``fixed`` (neither adapts: the ablation).
``steve`` (and ``steve_breadth``, with the breadth count) sets each rollout's depth with STEVE's
inverse-variance criterion (Buckman et al., 2018), adapted to on-policy segments: the h-step target
T_h = r_0 + … + γ^(h−1)·r_(h−1) + γ^h·V(ŝ_h) has variance

    σ²_h = γ^(2h)·σ²_V + Σ_(i<h) γ^(2i)·u_i

where σ²_V is the critic's squared error on the real batch and u_i the variance over ensemble
members of the one-step target r + γ·V(ŝ') at step i. STEVE weighs the targets by 1/σ²_h; each
rollout here keeps the depth of the target it would weigh most, argmin_h σ²_h over h = 0..its
length (at least ``min_horizon``). Stepping on lowers σ² while u_h < (1 − γ²)·σ²_V: deep where the
ensemble agrees and the critic is poor, shallow where the model is unsure. The rollouts are run to
``max_horizon`` and cut afterwards.
Independently, ``disagreement_stop`` ends a single rollout before the first transition whose
disagreement passes a threshold.

The rollouts run on the shared engine (``rollouts.py``): every step is one policy pass and one
world-model pass for all rollouts together (``[R, obs_dim]``); each rollout draws a random ensemble
member per step, and only the drawn members are computed unless the disagreement is needed
(adaptive depth, disagreement stop). The critic runs once, over all imagined states, after the last
step. A predicted done (or, with a known termination rule, the rule) ends its rollout; ended
rollouts are masked, not removed. Values and log-probabilities come from the current (pre-update)
policy, as PPO's ratio needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mbrl_ai.config import ImaginationConfig
from mbrl_ai.envs.termination import TerminationFn
from mbrl_ai.modules import Actor, Critic, RunningMeanStd
from mbrl_ai.modules.world_model import EnsembleWorldModel
from mbrl_ai.rollouts import model_rollouts


@dataclass(frozen=True)
class ImaginedRollouts:
    """Imagined transitions, time-major ``[H, R]``; one column per rollout, one segment each."""

    obs: torch.Tensor  # [H, R, obs_dim] policy inputs
    raw_obs: torch.Tensor  # [H + 1, R, obs_dim] the model's states ŝ_0..ŝ_H in environment units
    actions: torch.Tensor  # [H, R] or [H, R, act_dim]
    log_probs: torch.Tensor  # [H, R]
    values: torch.Tensor  # [H, R]
    next_values: torch.Tensor  # [H, R] V(ŝ_{h+1}), used where the rollout is cut
    rewards: torch.Tensor  # [H, R] what PPO optimises (model reward, scaled like real rewards)
    model_rewards: torch.Tensor  # [H, R] the model's reward in environment units
    terminated: torch.Tensor  # [H, R] bool: predicted done (no bootstrap)
    truncated: torch.Tensor  # [H, R] bool: last step of a rollout cut by the horizon or a stop
    valid: torch.Tensor  # [H, R] bool: the step happened (its rollout had not ended before it)
    disagreement: torch.Tensor | None  # [H, R] per-step disagreement (with disagreement_stop)
    int_rewards: torch.Tensor | None = (
        None  # [H, R] scaled intrinsic rewards (when curiosity is on)
    )

    @property
    def n_transitions(self) -> int:
        return int(self.valid.sum())

    def sizes(self, n_transitions: int) -> dict[str, float]:
        """Section 2.8's imagination sizes: ``n_transitions`` (summed over the iteration's
        rounds), this batch's depth and the mean number of steps its rollouts took."""
        mean_depth = float(self.valid.sum(0).float().mean()) if self.valid.shape[1] else 0.0
        return {
            "imagined_transitions": n_transitions,
            "imagined_depth": self.obs.shape[0],
            "imagined_mean_depth": mean_depth,
        }


STEVE_MODES = ("steve", "steve_breadth")


def rollout_count(confidence: float, thresh: float, min_rollouts: int, max_rollouts: int) -> int:
    """The pseudocode's clamped linear interpolation of confidence onto the rollout count."""
    frac = (confidence - thresh) / max(1.0 - thresh, 1e-8)
    frac = min(1.0, max(0.0, frac))
    return int(round(min_rollouts + frac * (max_rollouts - min_rollouts)))


def adaptive_horizon(
    variance: float, h_min: int, h_max: int, h_base: int, sensitivity: float
) -> int:
    """Seed 003: H = clip(H_min, H_max, H_base·exp(−k·Var)), rounded down."""
    return int(max(h_min, min(h_max, math.floor(h_base * math.exp(-sensitivity * variance)))))


def plan_imagination(
    confidence: float,
    planning_horizon: int,
    thresh: float,
    min_rollouts: int,
    max_rollouts: int,
    mode: str,
) -> tuple[int, int]:
    """(number of rollouts, maximum depth) before depth adaptation."""
    adapt_breadth = mode in ("breadth", "both", "steve_breadth")
    n = (
        rollout_count(confidence, thresh, min_rollouts, max_rollouts)
        if adapt_breadth
        else max_rollouts
    )
    return n, planning_horizon


def sample_start_states(
    recent_obs: np.ndarray,
    n: int,
    rng: np.random.Generator,
    newest_obs: np.ndarray | None = None,
    newest_share: float = 0.0,
) -> np.ndarray:
    """``n`` start states drawn uniformly from recent real states (pre-transition states only);
    a share ``newest_share`` of them from ``newest_obs`` (the newest real batch) instead."""
    k = int(round(n * newest_share)) if newest_obs is not None else 0
    starts = recent_obs[rng.integers(0, len(recent_obs), size=n - k)]
    if k:
        assert newest_obs is not None
        starts = np.concatenate([starts, newest_obs[rng.integers(0, len(newest_obs), size=k)]])
    return starts


@torch.no_grad()
def steve_depths(
    model: EnsembleWorldModel,
    value_fn: Callable[[torch.Tensor], torch.Tensor],
    reward_fn: Callable[[torch.Tensor], torch.Tensor],
    states: torch.Tensor,
    actions: torch.Tensor,
    valid: torch.Tensor,
    terminated: torch.Tensor,
    value_var: float,
    gamma: float,
    min_depth: int,
) -> torch.Tensor:
    """Each rollout's depth ``[R]``: the h with the least target variance σ²_h (module docstring).

    ``states`` ``[H + 1, R, obs_dim]`` raw, ``actions`` ``[H, R, ...]``, ``valid`` and
    ``terminated`` ``[H, R]``; ``value_fn`` maps raw states ``[..., obs_dim]`` to V ``[...]``,
    ``reward_fn`` model rewards to the units V is in.
    """
    steps, n = valid.shape
    flat_s = states[:-1].reshape(steps * n, -1)
    flat_a = actions.reshape(steps * n, *actions.shape[2:])
    mean, _, _ = model(flat_s, flat_a)  # [E, H·R, D + 1], normalised
    raw = mean * model.target_std + model.target_mean
    next_states = flat_s + raw[..., : model.obs_dim]
    targets = reward_fn(raw[..., -1]) + gamma * value_fn(next_states)  # [E, H·R]
    u = targets.var(0, unbiased=False).reshape(steps, n) * valid  # 0 past a rollout's end
    discount = gamma ** torch.arange(steps + 1, dtype=u.dtype, device=u.device)
    # σ²_h for h = 0..H: the critic's part (none past a done) plus the model's accumulated part
    model_part = torch.cat(
        [
            torch.zeros(1, n, dtype=u.dtype, device=u.device),
            torch.cumsum(discount[:-1, None] ** 2 * u, 0),
        ]
    )
    lengths = valid.sum(0)
    ended = (terminated & valid).any(0)
    h = torch.arange(steps + 1, device=u.device)[:, None]
    critic_part = discount[:, None] ** 2 * value_var
    critic_part = torch.where(ended[None] & (h == lengths[None]), 0.0, critic_part)
    var = torch.where(h <= lengths[None], model_part + critic_part, torch.inf)
    depth = var.argmin(0)  # the first of equal minima: the shallowest
    return torch.minimum(depth.clamp_min(min_depth), lengths)


@torch.no_grad()
def imagine_rollouts(
    actor: Actor,
    critic: Critic,
    model: EnsembleWorldModel,
    start_obs: torch.Tensor,
    horizon: int,
    cfg: ImaginationConfig,
    obs_rms: RunningMeanStd | None = None,
    reward_rms: RunningMeanStd | None = None,
    generator: torch.Generator | None = None,
    done_fn: TerminationFn | None = None,
    done_threshold: float = 0.5,
    value_var: float = 1.0,
    gamma: float = 0.99,
) -> ImaginedRollouts:
    """Roll ``start_obs`` ``[R, obs_dim]`` (raw states) forward through the model for up to
    ``horizon`` steps (fewer with adaptive depth), on the rollout engine (``rollouts.py``: its
    done rule with ``done_fn`` or ``done_threshold``, its disagreement stop). The steve modes
    roll ``cfg.max_horizon`` steps and cut each rollout with :func:`steve_depths`, which reads
    ``value_var`` (σ²_V) and ``gamma``."""

    def policy_input(raw: torch.Tensor) -> torch.Tensor:
        return obs_rms.normalize(raw).float() if obs_rms is not None else raw

    def act(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return actor.sample(policy_input(raw))

    depth_fn = None
    if cfg.mode in ("depth", "both"):
        base = cfg.base_horizon if cfg.base_horizon is not None else cfg.max_horizon

        def depth_fn(variance: float) -> int:
            return adaptive_horizon(
                variance, cfg.min_horizon, cfg.max_horizon, base, cfg.sensitivity
            )

    steve = cfg.mode in STEVE_MODES
    out = model_rollouts(
        model, act, start_obs, cfg.max_horizon if steve else horizon, sample=cfg.sample,
        done_fn=done_fn, done_threshold=done_threshold, disagreement_stop=cfg.disagreement_stop,
        depth_fn=depth_fn, generator=generator,
    )  # fmt: skip
    steps, n = out.valid.shape
    # one critic pass over ŝ_0..ŝ_H: V(ŝ_h) for each step and V(ŝ_{h+1}) to bootstrap from
    inputs = policy_input(out.states)
    values = critic(inputs.reshape(-1, inputs.shape[-1])).reshape(steps + 1, n)

    def reward_units(r: torch.Tensor) -> torch.Tensor:
        return reward_rms.scale(r.double()).float() if reward_rms is not None else r

    valid, terminated, truncated = out.valid, out.terminated, out.cut
    if steve:

        def value_fn(raw: torch.Tensor) -> torch.Tensor:
            return critic(policy_input(raw).reshape(-1, raw.shape[-1])).reshape(raw.shape[:-1])

        depth = steve_depths(
            model, value_fn, reward_units, out.states, out.actions, out.valid, out.terminated,
            value_var, gamma, cfg.min_horizon,
        )  # fmt: skip
        valid = out.valid & (torch.arange(steps, device=depth.device)[:, None] < depth[None])
        terminated = out.terminated & valid
        after = torch.zeros_like(valid)
        after[:-1] = valid[1:]
        truncated = valid & ~terminated & ~after
    zero = ~valid
    return ImaginedRollouts(
        obs=inputs[:-1],
        raw_obs=out.states,
        actions=out.actions,
        log_probs=out.log_probs.masked_fill(zero, 0.0),
        values=values[:-1].masked_fill(zero, 0.0),
        next_values=values[1:].masked_fill(zero, 0.0),
        rewards=reward_units(out.rewards).masked_fill(zero, 0.0),
        model_rewards=out.rewards.masked_fill(zero, 0.0),
        terminated=terminated,
        truncated=truncated,
        valid=valid,
        disagreement=out.disagreement,
    )
