"""2.4 Advantage and return computation, per segment.

GAE(γ, λ) over time-major arrays ``[T, N]``. Each column is a sequence of segments: a segment ends
where ``terminated`` (no bootstrap: the MDP ended) or ``truncated`` (bootstrap from
``next_values``, i.e. V of the state where the cut happened). Nothing flows across a segment end,
so one call serves the real rollout and, with the horizon marked as truncation, every imagined
rollout as its own segment.

    δ_t = r_t + γ·(1 − terminated_t)·V_next_t − V_t
    A_t = δ_t + γλ·(1 − terminated_t)·(1 − truncated_t)·A_{t+1}
    R_t = A_t + V_t
"""

from __future__ import annotations

import numpy as np
import torch


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
