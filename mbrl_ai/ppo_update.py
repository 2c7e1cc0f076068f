"""2.5 PPO-style policy and value update.

Clipped surrogate, value loss (optionally clipped around the old value), entropy bonus, one Adam
step on actor and critic together with the gradient norm clipped, advantages normalised per
minibatch, optional per-sample weights and an optional early stop on approximate KL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from mbrl_ai.collect import Rollout
from mbrl_ai.config import Config
from mbrl_ai.core.optim import Optimizer, clip_grad_norm
from mbrl_ai.imagine import ImaginedRollouts
from mbrl_ai.modules import Actor, Critic


@dataclass(frozen=True)
class PPOBatch:
    """Flat training samples ``[B, ...]`` with their targets."""

    obs: torch.Tensor  # [B, obs_dim]
    actions: torch.Tensor  # [B] or [B, act_dim]
    log_probs: torch.Tensor  # [B] log-prob under the policy that collected the sample
    values: torch.Tensor  # [B] value estimate at collection time
    advantages: torch.Tensor  # [B]
    returns: torch.Tensor  # [B] value targets
    weights: torch.Tensor | None = None  # [B] per-sample loss weight; None = all ones
    is_real: torch.Tensor | None = None  # [B] bool: real (True) or imagined sample; None = all real
    int_returns: torch.Tensor | None = None  # [B] targets of the intrinsic value head, if any

    def __len__(self) -> int:
        return self.obs.shape[0]

    def to(self, device: torch.device) -> PPOBatch:
        moved: dict[str, Any] = {
            k: (v.to(device) if v is not None else None) for k, v in self.__dict__.items()
        }
        return PPOBatch(**moved)


def concat_batches(a: PPOBatch, b: PPOBatch) -> PPOBatch:
    """One batch from two; missing weights count as ones and missing ``is_real`` as real."""

    def fill(batch: PPOBatch, name: str) -> torch.Tensor:
        value = getattr(batch, name)
        if value is not None:
            return value
        return torch.ones(len(batch), dtype=torch.bool if name == "is_real" else torch.float32)

    merged = {
        k: torch.cat([getattr(a, k), getattr(b, k)])
        for k in ("obs", "actions", "log_probs", "values", "advantages", "returns")
    }
    return PPOBatch(
        **merged,
        weights=torch.cat([fill(a, "weights"), fill(b, "weights")]),
        is_real=torch.cat([fill(a, "is_real"), fill(b, "is_real")]),
        int_returns=(
            torch.cat([a.int_returns, b.int_returns])
            if a.int_returns is not None and b.int_returns is not None
            else None
        ),
    )


def rollout_to_batch(
    rollout: Rollout,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    int_returns: torch.Tensor | None = None,
) -> PPOBatch:
    """Flatten a time-major rollout ``[T, N]`` and its GAE targets into a :class:`PPOBatch`."""
    t, n = rollout.values.shape
    return PPOBatch(
        obs=rollout.obs.reshape(t * n, -1),
        actions=rollout.actions.reshape(t * n, *rollout.actions.shape[2:]),
        log_probs=rollout.log_probs.reshape(-1),
        values=rollout.values.reshape(-1),
        advantages=advantages.reshape(-1),
        returns=returns.reshape(-1),
        int_returns=int_returns.reshape(-1) if int_returns is not None else None,
    )


def imagined_to_batch(
    imagined: ImaginedRollouts,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    weight: float,
    int_returns: torch.Tensor | None = None,
) -> PPOBatch:
    """The valid imagined steps as a flat :class:`PPOBatch` with a per-sample weight."""
    v = imagined.valid
    return PPOBatch(
        obs=imagined.obs[v],
        actions=imagined.actions[v],
        log_probs=imagined.log_probs[v],
        values=imagined.values[v],
        advantages=advantages[v],
        returns=returns[v],
        weights=torch.full((int(v.sum()),), weight),
        is_real=torch.zeros(int(v.sum()), dtype=torch.bool),
        int_returns=int_returns.cpu()[v.cpu()] if int_returns is not None else None,
    )


def minibatch_size(size: int, is_real: torch.Tensor | None, batch_size: int, mode: str) -> int:
    """Samples per minibatch (``ppo.minibatches``): ``batch_size``, or with ``per_real`` the
    batch spread over the ⌈real / batch_size⌉ minibatches its real samples alone would fill
    (⌈size / that⌉ each, so a remainder can leave one fewer)."""
    if mode == "per_sample" or is_real is None:
        return batch_size
    count = max(1, -(-int(is_real.sum()) // batch_size))
    return -(-size // count)


def ppo_update(
    actor: Actor,
    critic: Critic,
    optimizer: Optimizer,
    batch: PPOBatch,
    cfg: Config,
    int_critic: Critic | None = None,
) -> dict[str, float]:
    """``cfg.n_epochs`` passes of minibatches (``cfg.batch_size`` samples, or as
    ``ppo.minibatches`` says); returns mean losses and stats.

    Keys: policy_loss, value_loss, entropy, approx_kl, clip_fraction, explained_variance,
    n_updates, and kl_stop (1 when the KL early stop ended the update). When the batch mixes real
    and imagined samples, approx_kl, clip_fraction and adv_abs (mean |advantage| before
    normalisation) are also reported per kind: ``*_real`` and ``*_imagined``. With ``int_critic``
    (a separate intrinsic value head) it is fitted to ``batch.int_returns`` in the same step, its
    loss added with the same coefficient, and ``int_value_loss`` is reported.
    """
    p = cfg.ppo
    params = [*actor.parameters(), *critic.parameters()]
    # the intrinsic head is fitted only when the batch has its targets
    int_head = int_critic if batch.int_returns is not None else None
    if int_head is not None:
        params += list(int_head.parameters())
    size = len(batch)
    mb_size = minibatch_size(size, batch.is_real, cfg.batch_size, p.minibatches)
    fields = {k: v for k, v in batch.__dict__.items() if v is not None}
    # per minibatch, detached: the statistics are computed once, at the end
    stats = _UpdateStats()
    for _ in range(cfg.n_epochs):
        # shuffle once per epoch, then take contiguous slices (cheaper than indexing per minibatch)
        order = torch.randperm(size, device=batch.obs.device)
        shuffled = {k: v[order] for k, v in fields.items()}
        for start in range(0, size, mb_size):
            mb = {k: v[start : start + mb_size] for k, v in shuffled.items()}
            loss, parts, log_ratio, int_value_loss = _minibatch_loss(
                actor, critic, int_head, mb, cfg
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip_grad_norm(params, cfg.max_grad_norm)
            optimizer.step()

            stats.losses.append(parts.detach())
            stats.log_ratios.append(log_ratio.detach())
            if int_value_loss is not None:
                stats.int_losses.append(int_value_loss.detach())
            if "is_real" in mb:
                stats.real_masks.append(mb["is_real"])
            if (
                p.target_kl is not None
                and _approx_kl(stats.log_ratios[-1]).item() > p.kl_stop_factor * p.target_kl
            ):
                stats.kl_stop = True
                break
        if stats.kl_stop:
            break
    return _update_metrics(batch, stats, cfg.clip_range)


@dataclass
class _UpdateStats:
    """What an update keeps of each minibatch, detached, for the metrics at its end."""

    losses: list[torch.Tensor] = field(default_factory=list)  # [policy, value, entropy]
    log_ratios: list[torch.Tensor] = field(default_factory=list)
    int_losses: list[torch.Tensor] = field(default_factory=list)
    real_masks: list[torch.Tensor] = field(default_factory=list)  # which samples are real
    kl_stop: bool = False


def _minibatch_loss(
    actor: Actor,
    critic: Critic,
    int_head: Critic | None,
    mb: dict[str, torch.Tensor],
    cfg: Config,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One minibatch's loss: the clipped surrogate, the (optionally clipped) value loss and the
    entropy bonus, each weighted per sample (``weights``), plus the intrinsic head's value loss.
    Returns the loss, [policy, value, entropy], the log-ratios and the intrinsic value loss."""
    p = cfg.ppo
    new_logp, entropy = actor.evaluate(mb["obs"], mb["actions"])
    values = critic(mb["obs"])
    adv = mb["advantages"]
    if p.normalize_advantage and len(adv) > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    weight = mb.get("weights")

    log_ratio = new_logp - mb["log_probs"]
    ratio = log_ratio.exp()
    surrogate = torch.min(ratio * adv, ratio.clamp(1 - cfg.clip_range, 1 + cfg.clip_range) * adv)
    policy_loss = -_mean(surrogate, weight)

    value_err = (values - mb["returns"]).pow(2)
    if p.clip_range_vf is not None:
        old = mb["values"]
        clipped = old + (values - old).clamp(-p.clip_range_vf, p.clip_range_vf)
        value_err = torch.max(value_err, (clipped - mb["returns"]).pow(2))
    value_loss = _mean(value_err, weight)
    entropy_mean = _mean(entropy, weight)

    loss = policy_loss + p.vf_coef * value_loss - p.ent_coef * entropy_mean
    int_value_loss = None
    if int_head is not None:
        int_value_loss = _mean((int_head(mb["obs"]) - mb["int_returns"]).pow(2), weight)
        loss = loss + p.vf_coef * int_value_loss
    parts = torch.stack([policy_loss, value_loss, entropy_mean])
    return loss, parts, log_ratio, int_value_loss


def _update_metrics(batch: PPOBatch, stats: _UpdateStats, clip_range: float) -> dict[str, float]:
    """The update's metrics (see :func:`ppo_update`), computed once from what it kept."""
    size = len(batch)
    with torch.no_grad():
        policy_loss, value_loss, entropy = torch.stack(stats.losses).mean(0).tolist()
        all_log_ratios = torch.cat(stats.log_ratios)
        clip_fraction = ((all_log_ratios.exp() - 1).abs() > clip_range).float().mean().item()
        var_returns = batch.returns.var() if size > 1 else torch.tensor(0.0)
        explained = (
            1 - (batch.returns - batch.values).var() / var_returns
            if var_returns > 0
            else torch.tensor(0.0)
        )
    metrics = {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "approx_kl": _approx_kl(all_log_ratios).item(),
        "clip_fraction": clip_fraction,
        "explained_variance": float(explained),
        "n_updates": len(stats.losses),
        "kl_stop": int(stats.kl_stop),
    }
    if stats.int_losses:
        metrics["int_value_loss"] = float(torch.stack(stats.int_losses).mean())
    if stats.real_masks:
        assert batch.is_real is not None  # the minibatches had is_real, so the batch has it
        real = torch.cat(stats.real_masks)
        for kind, mask, batch_mask in (
            ("real", real, batch.is_real),
            ("imagined", ~real, ~batch.is_real),
        ):
            if mask.any():
                lr_kind = all_log_ratios[mask]
                metrics[f"approx_kl_{kind}"] = _approx_kl(lr_kind).item()
                metrics[f"clip_fraction_{kind}"] = (
                    ((lr_kind.exp() - 1).abs() > clip_range).float().mean().item()
                )
                metrics[f"adv_abs_{kind}"] = batch.advantages[batch_mask].abs().mean().item()
    return metrics


def _approx_kl(log_ratio: torch.Tensor) -> torch.Tensor:
    """Schulman's low-variance estimator of KL(old ‖ new): mean((r − 1) − log r)."""
    return ((log_ratio.exp() - 1) - log_ratio).mean()


def _mean(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    return x.mean() if weight is None else (x * weight).sum() / weight.sum().clamp_min(1e-8)
