"""2.4 Advantage and return computation, per segment.

GAE(γ, λ) over time-major arrays ``[T, N]``. Each column is a sequence of segments: a segment ends
where ``terminated`` (no bootstrap: the MDP ended) or ``truncated`` (bootstrap from
``next_values``, i.e. V of the state where the cut happened). Nothing flows across a segment end,
so one call serves the real rollout and, with the horizon marked as truncation, every imagined
rollout as its own segment. :func:`advantages_batch` builds the real + imagined PPO batch this way;
with an intrinsic value head it adds β·A_int from a second, non-episodic GAE.

    δ_t = r_t + γ·(1 − terminated_t)·V_next_t − V_t
    A_t = δ_t + γλ·(1 − terminated_t)·(1 − truncated_t)·A_{t+1}
    R_t = A_t + V_t
"""

from __future__ import annotations

import numpy as np
import torch

from mbrl_ai.collect import Rollout
from mbrl_ai.imagine import ImaginedRollouts
from mbrl_ai.modules import Critic, RunningMeanStd
from mbrl_ai.ppo_update import (
    PPOBatch,
    concat_batches,
    imagined_to_batch,
    rollout_to_batch,
)


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns ``[T, N]``; see the module docstring for the recursion.

    ``next_values[t]`` must hold V(s_{t+1}) for a continuing step and V(final state) for a
    truncated one; its value at terminated steps is ignored.
    """
    # the backward recursion runs in numpy: a Python loop over T on small arrays is ~10x faster
    # there than on torch tensors
    r = rewards.detach().cpu().numpy().astype(np.float64)
    v = values.detach().cpu().numpy().astype(np.float64)
    v_next = next_values.detach().cpu().numpy().astype(np.float64)
    not_term = 1.0 - terminated.cpu().numpy().astype(np.float64)
    not_end = not_term * (1.0 - truncated.cpu().numpy().astype(np.float64))
    deltas = r + gamma * not_term * v_next - v
    carry = gamma * gae_lambda * not_end
    adv = np.zeros_like(r)
    running = np.zeros(r.shape[1:])
    for t in range(r.shape[0] - 1, -1, -1):
        running = deltas[t] + carry[t] * running
        adv[t] = running
    advantages = torch.from_numpy(adv).to(values.dtype).to(values.device)
    return advantages, advantages + values.detach()


def critic_error(rollout: Rollout, gamma: float, gae_lambda: float) -> float:
    """The critic's mean squared error against the real batch's GAE returns: σ²_V, the variance
    STEVE's weighting gives the bootstrap value (``imagine.steve_depths``)."""
    _, ret = compute_gae(
        rollout.rewards, rollout.values, rollout.next_values, rollout.terminated,
        rollout.truncated, gamma, gae_lambda,
    )  # fmt: skip
    return float((ret - rollout.values).pow(2).mean())


@torch.no_grad()
def add_intrinsic_advantage(
    advantages: torch.Tensor,
    int_critic: Critic | None,
    obs: torch.Tensor,
    next_obs: torch.Tensor,
    int_rewards: torch.Tensor | None,
    ends: torch.Tensor,
    beta: float,
    int_gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """With a separate intrinsic value head: A + β·A_int and the head's targets; else unchanged.

    The intrinsic GAE is non-episodic, as in RND: an episode's end is not a terminal state for
    novelty, so every segment end bootstraps with V_int of the true next state (``next_obs``:
    policy inputs, ``[T, N, obs_dim]``), and nothing is cut to zero.
    """
    if int_critic is None or int_rewards is None:
        return advantages, None
    values = int_critic(obs)
    next_values = int_critic(next_obs)
    int_adv, int_ret = compute_gae(
        int_rewards.to(values.device),
        values,
        next_values,
        torch.zeros_like(ends),
        ends,
        int_gamma,
        gae_lambda,
    )
    return advantages + beta * int_adv.to(advantages.device), int_ret


def advantages_batch(
    rollout: Rollout,
    imagined: ImaginedRollouts,
    imagined_weight: float,
    gamma: float,
    gae_lambda: float,
    beta: float = 0.0,
    int_critic: Critic | None = None,
    int_gamma: float = 0.99,
    obs_rms: RunningMeanStd | None = None,
    device: torch.device | None = None,
) -> PPOBatch:
    """2.4 for one imagine-and-update round: the real rollout's segments (terminated → no
    bootstrap, truncated → V(final_obs)) and each imagined rollout as its own segment
    (bootstrapped at the cut, stopped at a done), flattened into one PPO batch whose imagined
    samples carry ``imagined_weight``. With ``int_critic``: + β·A_int on both."""

    def policy_input(raw: torch.Tensor) -> torch.Tensor:
        raw = raw.to(device)
        return obs_rms.normalize(raw).float() if obs_rms is not None else raw

    adv, ret = compute_gae(
        rollout.rewards, rollout.values, rollout.next_values, rollout.terminated,
        rollout.truncated, gamma, gae_lambda,
    )  # fmt: skip
    adv, int_ret = add_intrinsic_advantage(
        adv, int_critic, rollout.obs, policy_input(torch.as_tensor(rollout.raw_next_obs)),
        rollout.int_rewards, rollout.ends, beta, int_gamma, gae_lambda,
    )  # fmt: skip
    real = rollout_to_batch(rollout, adv, ret, int_ret)
    im_adv, im_ret = compute_gae(
        imagined.rewards, imagined.values, imagined.next_values, imagined.terminated,
        imagined.truncated, gamma, gae_lambda,
    )  # fmt: skip
    im_adv, im_int_ret = add_intrinsic_advantage(
        im_adv, int_critic, imagined.obs, policy_input(imagined.raw_obs[1:]),
        imagined.int_rewards, imagined.terminated | imagined.truncated, beta, int_gamma,
        gae_lambda,
    )  # fmt: skip
    im = imagined_to_batch(imagined, im_adv.cpu(), im_ret.cpu(), imagined_weight, im_int_ret)
    return concat_batches(real, im)
