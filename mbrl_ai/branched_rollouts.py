"""MBPO's model rollouts: how long they are, and running them from real states.

Rollout-length rules behind one function, :func:`rollout_horizon`:

    fixed       H = mbpo.horizon
    linear      MBPO's schedule: H goes linearly from H_a at iteration a to H_b at iteration b
    adaptive    seed 003: H = clip(H_min, H_max, H_base·exp(−k·Var)), Var = the elites' held-out
                disagreement (variance of their mean predictions, normalised units)

and, for any of them, ``mbpo.disagreement_stop`` ends each rollout on its own once its members
disagree more than that (the per-sample stop).
"""

from __future__ import annotations

import numpy as np
import torch

from mbrl_ai.buffers import Transitions
from mbrl_ai.config import MBPOConfig
from mbrl_ai.imagine import adaptive_horizon
from mbrl_ai.modules.sac_nets import SquashedGaussianActor
from mbrl_ai.modules.world_model import EnsembleWorldModel
from mbrl_ai.termination import TerminationFn


def rollout_horizon(cfg: MBPOConfig, iteration: int, variance: float) -> int:
    """H for the rollouts after the model update of ``iteration`` (1-based)."""
    if cfg.rollout_length == "fixed":
        return cfg.horizon
    if cfg.rollout_length == "linear":
        a, b, h_a, h_b = cfg.linear_schedule
        frac = min(max((iteration - a) / (b - a), 0.0), 1.0)
        return int(h_a + frac * (h_b - h_a))
    base = cfg.base_horizon if cfg.base_horizon is not None else cfg.max_horizon
    return adaptive_horizon(variance, cfg.min_horizon, cfg.max_horizon, base, cfg.sensitivity)


def max_rollout_horizon(cfg: MBPOConfig) -> int:
    """The longest H a rule can ask for (sizes the model buffer once)."""
    if cfg.rollout_length == "fixed":
        return cfg.horizon
    if cfg.rollout_length == "linear":
        return max(cfg.linear_schedule[2], cfg.linear_schedule[3])
    return cfg.max_horizon


@torch.no_grad()
def branched_rollouts(
    model: EnsembleWorldModel,
    actor: SquashedGaussianActor,
    starts: torch.Tensor,
    horizon: int,
    elites: list[int],
    generator: torch.Generator | None = None,
    done_fn: TerminationFn | None = None,
    done_threshold: float = 0.5,
    disagreement_stop: float | None = None,
) -> tuple[Transitions, dict[str, float]]:
    """``horizon`` steps from every start state ``[R, obs_dim]``: the policy acts (a sample of
    π), one elite drawn per row and step predicts (a sample of its Gaussian). A rollout ends at a
    predicted done (or ``done_fn``), or once its disagreement passes ``disagreement_stop``; the
    transitions made until then are returned flat, with the mean length and disagreement."""
    device = starts.device
    elite_ids = torch.as_tensor(elites, device=device)
    obs = starts
    alive = torch.ones(len(starts), dtype=torch.bool, device=device)
    parts: list[tuple[torch.Tensor, ...]] = []
    lengths = torch.zeros(len(starts), device=device)
    disagreements = []
    for _ in range(horizon):
        actions, _ = actor.sample(obs)
        pick = torch.randint(len(elites), (len(obs),), device=device, generator=generator)
        next_obs, reward, done_p, disagreement = model.predict(obs, actions, elite_ids[pick])
        disagreements.append(disagreement[alive].mean())
        if disagreement_stop is not None:
            alive = alive & (disagreement <= disagreement_stop)
        done = done_fn(next_obs) if done_fn is not None else done_p > done_threshold
        parts.append((obs[alive], actions[alive], reward[alive], next_obs[alive], done[alive]))
        lengths += alive.float()
        alive = alive & ~done
        obs = next_obs
        if not alive.any():
            break
    o, a, r, n, d = (torch.cat(x).cpu().numpy() for x in zip(*parts, strict=True))
    stats = {
        "rollout_length_mean": float(lengths.mean()),
        "rollout_disagreement": float(torch.stack(disagreements).nanmean()),
    }
    return Transitions(o, a, r.astype(np.float32), n, d.astype(bool)), stats
