"""PETS' return estimate: candidate action sequences rolled out through the ensemble world model
with particles (trajectory sampling), as one batched pass per step of the horizon.

``propagation``:

- ``ts_inf`` — each of the ``particles`` keeps one member for the whole horizon (particles are
  dealt to members in turn, so ``particles`` must be a multiple of the ensemble size) and samples
  from its Gaussian: the members' disagreement shows up as spread between particles.
- ``ts1`` — every particle draws a member uniformly at every step (and samples from it).
- ``expectation`` — no sampling: the mean over members of their means (one particle suffices).

Rewards and episode ends are the model's own (its reward head and done head) unless a known reward
or termination function is given. With ``soft_done`` a learned done probability p discounts the
rest of the particle's rewards by (1 − p) (the expected return over episode ends: a plan is
penalised for heading where the head sees danger before it is sure); otherwise a probability above
``done_threshold`` ends the particle after that step's reward. A known termination ends it. A candidate's value is the mean over its particles of the
discounted sum of rewards, plus, with a ``terminal_value`` V, ``gamma^H V(s_H)`` for the part of
the particle still alive after the horizon (the rest of the episode, valued by a learned critic).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mbrl_ai.envs.termination import TerminationFn
from mbrl_ai.modules.world_model import EnsembleWorldModel

PROPAGATIONS = ("ts_inf", "ts1", "expectation")
# (state, env-unit action, next state) -> reward, all rows [R, ...]
RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def sequence_returns(
    model: EnsembleWorldModel,
    obs: torch.Tensor,
    actions: torch.Tensor,
    particles: int,
    propagation: str,
    gamma: float,
    generator: torch.Generator,
    reward_fn: RewardFn | None = None,
    termination_fn: TerminationFn | None = None,
    done_threshold: float = 0.5,
    soft_done: bool = True,
    terminal_value: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Estimated returns ``[B, N]`` of candidates ``actions`` (``[B, N, H, d]`` env-unit floats
    or ``[B, N, H]`` indices) from start states ``obs`` ``[B, obs_dim]``."""
    b, n, horizon = actions.shape[:3]
    e = model.ensemble_size
    rows = b * n * particles
    state = obs[:, None, None, :].expand(b, n, particles, obs.shape[-1]).reshape(rows, -1)
    total = torch.zeros(rows, device=obs.device)
    alive = torch.ones(rows, device=obs.device)  # probability that the particle's episode goes on
    for t in range(horizon):
        a = actions[:, :, t].unsqueeze(2).expand(b, n, particles, *actions.shape[3:])
        a = a.reshape(rows, *actions.shape[3:])
        if propagation == "ts_inf":
            nxt, reward, done_p = _fixed_members(model, state, a, e, generator)
        elif propagation == "ts1":
            nxt, reward, done_p, _ = model.step(state, a, sample=True, generator=generator)
        else:
            nxt, reward, done_p = _expectation(model, state, a)
        if reward_fn is not None:
            reward = reward_fn(state, a, nxt)
        total = total + (gamma**t) * reward * alive
        if termination_fn is not None:
            alive = alive * ~termination_fn(nxt)
        elif soft_done:  # the expected return over the done head's episode ends
            alive = alive * (1.0 - done_p)
        else:
            alive = alive * (done_p <= done_threshold)
        state = nxt
    if terminal_value is not None:
        total = total + (gamma**horizon) * alive * terminal_value(state)
    return total.view(b, n, particles).mean(-1)


def _fixed_members(
    model: EnsembleWorldModel,
    state: torch.Tensor,
    actions: torch.Tensor,
    e: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row r goes through member r mod E: rows [M·E] are viewed as [M, E] and transposed, so that
    each member computes only its own rows."""
    rows = state.shape[0]
    m = rows // e

    def by_member(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(m, e, *x.shape[1:]).transpose(0, 1)

    mean, logvar, done_logit = model(by_member(state), by_member(actions))  # [E, M, D]
    noise = torch.randn(mean.shape, device=mean.device, generator=generator)
    pred = mean + noise * (0.5 * logvar).exp()

    def by_row(x: torch.Tensor) -> torch.Tensor:
        return x.transpose(0, 1).reshape(rows, *x.shape[2:])

    raw = by_row(pred) * model.target_std + model.target_mean
    nxt = state + raw[:, : model.obs_dim]
    done_logit = model.done_logit_from(done_logit, by_member(nxt))
    return nxt, raw[:, -1], torch.sigmoid(by_row(done_logit))


def _expectation(
    model: EnsembleWorldModel, state: torch.Tensor, actions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every member on every row; the mean over members of their means (and done probabilities)."""
    mean, _, done_logit = model(state, actions)
    raw = mean.mean(0) * model.target_std + model.target_mean
    nxt = state + raw[:, : model.obs_dim]
    done_logit = model.done_logit_from(done_logit, nxt)
    return nxt, raw[:, -1], torch.sigmoid(done_logit).mean(0)
