"""MBPO's model rollouts: how long they are, and running them from real states.

Rollout-length rules behind one function, :func:`rollout_horizon`:

    fixed       H = mbpo.horizon
    linear      MBPO's schedule: H goes linearly from H_a at iteration a to H_b at iteration b
    adaptive    seed 003: H = clip(H_min, H_max, H_base·exp(−k·Var)), Var = the elites' held-out
                disagreement (variance of their mean predictions, normalised units)

and, for any of them, ``mbpo.disagreement_stop`` ends each rollout on its own before the first
transition whose members disagree more than that (the per-sample stop of the rollout engine,
``rollouts.py``).
"""

from __future__ import annotations

import numpy as np
import torch

from mbrl_ai.algos.mbpo.config import MBPOConfig
from mbrl_ai.core.buffers import Transitions
from mbrl_ai.envs.termination import TerminationFn
from mbrl_ai.imagine import adaptive_horizon
from mbrl_ai.modules.sac_nets import SquashedGaussianActor
from mbrl_ai.modules.world_model import EnsembleWorldModel
from mbrl_ai.rollouts import model_rollouts


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
    """``horizon`` steps from every start state ``[R, obs_dim]`` on the rollout engine
    (``rollouts.py``): the policy acts (a sample of π), one elite drawn per row and step predicts
    (a sample of its Gaussian). The valid transitions are returned flat (step-major), with the
    mean rollout length and the mean disagreement of the rollouts still running at each step."""
    out = model_rollouts(
        model,
        actor.sample,
        starts,
        horizon,
        members=torch.as_tensor(elites, device=starts.device),
        done_fn=done_fn,
        done_threshold=done_threshold,
        disagreement_stop=disagreement_stop,
        record_disagreement=True,
        generator=generator,
    )
    v = out.valid
    o, a, r, n, d = (
        x[v].cpu().numpy()
        for x in (
            out.states[:-1],
            out.actions,
            out.rewards,
            out.states[1:],
            out.terminated,
        )
    )
    assert out.disagreement is not None
    per_step = [d_h[e_h].mean() for d_h, e_h in zip(out.disagreement, out.entered, strict=True)]
    stats = {
        "rollout_length_mean": float(out.lengths.float().mean()),
        "rollout_disagreement": float(torch.stack(per_step).nanmean()),
    }
    return Transitions(o, a, r.astype(np.float32), n, d.astype(bool)), stats
