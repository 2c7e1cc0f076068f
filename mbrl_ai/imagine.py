"""2.3 Adaptive imagination: how many rollouts, how deep, all advanced as one batch.

Breadth (the pseudocode): the number of rollouts is the confidence linearly mapped from
[confidence_thresh, 1] to [min_planning_rollouts, max_planning_rollouts], clamped. Depth (seed
003): H = clip(H_min, H_max, H_base·exp(−k·Var)), with Var the ensemble's disagreement at the start
states. ``imagination.mode`` picks ``breadth`` (count adapts, H = planning_horizon), ``depth`` (H
adapts, count = max_planning_rollouts), ``both``, or ``fixed`` (neither adapts: the ablation).
Independently, ``disagreement_stop`` ends a single rollout once its disagreement passes a
threshold.

Every step is one policy pass and one world-model pass for all rollouts together (``[R, obs_dim]``);
each rollout draws a random ensemble member per step, and only the drawn members are computed
unless the disagreement is needed (adaptive depth, disagreement stop). The critic runs once, over
all imagined states, after the last step. A predicted done (or, with a known termination rule, the
rule) ends its rollout; ended rollouts are masked, not removed. Values and log-probabilities come
from the current (pre-update) policy, as PPO's ratio needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from mbrl_ai.config import ImaginationConfig
from mbrl_ai.modules import Actor, Critic, RunningMeanStd
from mbrl_ai.modules.world_model import EnsembleWorldModel
from mbrl_ai.termination import TerminationFn


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
    truncated: torch.Tensor  # [H, R] bool: last step before the horizon or a disagreement stop
    valid: torch.Tensor  # [H, R] bool: the step happened (its rollout had not ended before it)
    disagreement: torch.Tensor | None  # [H, R] per-step disagreement (with disagreement_stop)
    int_rewards: torch.Tensor | None = (
        None  # [H, R] scaled intrinsic rewards (when curiosity is on)
    )

    @property
    def n_transitions(self) -> int:
        return int(self.valid.sum())


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
    adapt_breadth = mode in ("breadth", "both")
    n = (
        rollout_count(confidence, thresh, min_rollouts, max_rollouts)
        if adapt_breadth
        else max_rollouts
    )
    return n, planning_horizon


def sample_start_states(recent_obs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` start states drawn uniformly from recent real states (pre-transition states only)."""
    return recent_obs[rng.integers(0, len(recent_obs), size=n)]


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
) -> ImaginedRollouts:
    """Roll ``start_obs`` ``[R, obs_dim]`` (raw states) forward through the model for up to
    ``horizon`` steps (fewer with adaptive depth). ``done_fn`` (a known termination rule on raw
    next states) replaces the learned done head when given."""
    n, device = start_obs.shape[0], start_obs.device
    adapt_depth = cfg.mode in ("depth", "both")

    def policy_input(raw: torch.Tensor) -> torch.Tensor:
        return obs_rms.normalize(raw).float() if obs_rms is not None else raw

    steps: list[dict[str, torch.Tensor]] = []
    alive = torch.ones(n, dtype=torch.bool, device=device)
    raw = start_obs
    obs_in = policy_input(raw)
    depth = horizon
    h = 0
    while h < depth:
        action, logp = actor.sample(obs_in)
        # all members run only where the disagreement is needed; otherwise 1/E of the ensemble
        need_var = cfg.disagreement_stop is not None or (adapt_depth and h == 0)
        next_raw, reward, done_p, disagreement = model.step(
            raw, action, cfg.sample, need_var, generator
        )
        if h == 0 and adapt_depth:
            base = cfg.base_horizon if cfg.base_horizon is not None else cfg.max_horizon
            depth = adaptive_horizon(
                float(disagreement.mean()),
                cfg.min_horizon,
                cfg.max_horizon,
                base,
                cfg.sensitivity,
            )
        done = done_fn(next_raw) if done_fn is not None else done_p > cfg.done_threshold
        step = {
            "raw": raw,
            "obs": obs_in,
            "actions": action,
            "log_probs": logp,
            "model_rewards": reward,
            "terminated": done & alive,
            "valid": alive,
        }
        alive = alive & ~done
        if cfg.disagreement_stop is not None:
            stop = disagreement > cfg.disagreement_stop
            step["stopped"] = stop & alive
            step["disagreement"] = disagreement
            alive = alive & ~stop
        steps.append(step)
        raw = next_raw
        obs_in = policy_input(raw)
        h += 1
        if not alive.any():
            break

    stack = {k: torch.stack([s[k] for s in steps]) for k in steps[0]}  # [H, R, ...]
    # one critic pass over ŝ_0..ŝ_H: V(ŝ_h) for each step and V(ŝ_{h+1}) to bootstrap from
    all_obs = torch.cat([stack["obs"], obs_in.unsqueeze(0)])
    all_values = critic(all_obs.reshape(-1, all_obs.shape[-1])).reshape(len(steps) + 1, n)
    valid = stack["valid"]
    # a rollout still alive after its last step is cut by the horizon: bootstrap there
    last = torch.zeros_like(valid)
    last[-1] = valid[-1] & ~stack["terminated"][-1]
    truncated = stack["stopped"] | last if "stopped" in stack else last
    rewards = stack["model_rewards"]
    if reward_rms is not None:
        rewards = reward_rms.scale(rewards.double()).float()
    zero = ~valid
    return ImaginedRollouts(
        obs=stack["obs"],
        raw_obs=torch.cat([stack.pop("raw"), raw.unsqueeze(0)]),
        actions=stack["actions"],
        log_probs=stack["log_probs"].masked_fill(zero, 0.0),
        values=all_values[:-1].masked_fill(zero, 0.0),
        next_values=all_values[1:].masked_fill(zero, 0.0),
        rewards=rewards.masked_fill(zero, 0.0),
        model_rewards=stack["model_rewards"].masked_fill(zero, 0.0),
        terminated=stack["terminated"],
        truncated=truncated,
        valid=valid,
        disagreement=stack.get("disagreement"),
    )
