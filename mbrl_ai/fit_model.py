"""2.2 Update the world model ŵφ and compute its confidence.

The pseudocode takes one minibatch step and sets confidence = exp(−loss) on that minibatch. Here
the model is fitted for ``train_steps`` steps on the real-transition replay (one minibatch per
member per step, Gaussian NLL on normalised targets plus a weighted BCE for the rare done), and the
confidence is scored on the held-out split with the pseudocode's sum, in normalised units:

    model_loss = MSE(Δs) + MSE(r) + BCE(done)          (held-out, mean over members)
    confidence = exp(−model_loss)  ∈ (0, 1]

MSE rather than the NLL, which goes negative and would put confidence above 1. A model that only
predicts the mean target scores MSE ≈ 1 per head, so confidence is ≈ e^-2 or lower for it.

A non-finite training loss (a diverging model, corrupt data) undoes the whole update of this
iteration: model and optimiser go back to their state before it, ``update_skipped`` is 1 and the
confidence 0, so the iteration learns from real data only. A non-finite held-out score also
gives confidence 0.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mbrl_ai.collect import Rollout
from mbrl_ai.config import WorldModelConfig
from mbrl_ai.core.buffers import ReplayBuffer, Transitions
from mbrl_ai.core.optim import Adam, Optimizer
from mbrl_ai.envs import EnvInfo
from mbrl_ai.modules.trust import TrustGate, step_errors
from mbrl_ai.modules.world_model import EnsembleWorldModel

# the k-step open-loop error diagnostic starts from at most this many real states per iteration
OPEN_LOOP_MAX_STARTS = 256


def build_world_model(
    cfg: WorldModelConfig, info: EnvInfo, device: torch.device | None = None
) -> EnsembleWorldModel:
    """The ensemble world model ``world_model.*`` describes, for ``info``'s spaces."""
    model = EnsembleWorldModel(
        info.obs_dim,
        info.action_space,
        cfg.ensemble_size,
        list(cfg.hidden),
        cfg.activation,
        cfg.min_logvar,
        cfg.max_logvar,
        done_on_next_state=cfg.done_input == "next_state",
        done_hidden=list(cfg.done_hidden),
    )
    return model.to(device) if device is not None else model


def build_model_optimizer(model: EnsembleWorldModel, lr: float, cfg: WorldModelConfig) -> Adam:
    """The world model's AdamW (learning rate: the root ``lr_world_model``)."""
    return Adam(
        model.parameters(),
        lr=lr,
        weight_decay=cfg.weight_decay,
        decoupled=True,
        fused=cfg.fused_optimizer,
    )


def build_real_replay(
    info: EnvInfo, capacity: int, holdout_fraction: float, seed: int
) -> ReplayBuffer:
    """The replay of every real transition that the world model is fitted to (a fixed share
    held out to score it)."""
    action_shape = () if info.discrete else (info.action_dim,)
    return ReplayBuffer(capacity, info.obs_dim, action_shape, info.discrete, holdout_fraction, seed)


def _tensors(batch: Transitions, device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(
        torch.as_tensor(x, device=device)
        for x in (
            batch.obs,
            batch.actions,
            batch.rewards,
            batch.next_obs,
            batch.terminated.astype(np.float32),
        )
    )


@dataclass
class _FitData:
    """The replay's training split as tensors, with normalised targets and the done weight."""

    inputs: torch.Tensor  # [N, obs_dim + action_dim], normalised once per fit
    nxt: torch.Tensor
    term: torch.Tensor
    targets: torch.Tensor  # [N, obs_dim + 1]
    pos_weight: torch.Tensor
    train_idx: np.ndarray
    hold_idx: np.ndarray


def _prepare(
    model: EnsembleWorldModel,
    replay: ReplayBuffer,
    cfg: WorldModelConfig,
    device: torch.device,
) -> _FitData:
    """Split, fit the normaliser to the training split, and build the targets."""
    train_idx, hold_idx = replay.indices(holdout=False), replay.indices(holdout=True)
    if len(hold_idx) == 0:  # too little data to hold any out yet: score on what there is
        hold_idx = train_idx
    obs, act, rew, nxt, term = _tensors(replay.get(train_idx), device)
    model.set_normalizer(obs, act, nxt, rew)
    n_pos = float(term.sum())
    pos_weight = cfg.done_pos_weight or max(1.0, (len(term) - n_pos) / max(n_pos, 1.0))
    targets = model.normalized_targets(obs, nxt, rew)
    return _FitData(
        model.normalized_input(obs, act),
        nxt,
        term,
        targets,
        torch.tensor(pos_weight, device=device),
        train_idx,
        hold_idx,
    )


def _gradient_step(
    model: EnsembleWorldModel,
    optimizer: Optimizer,
    data: _FitData,
    cfg: WorldModelConfig,
    rng: np.random.Generator,
) -> torch.Tensor | None:
    """One step on a minibatch per member (Gaussian NLL + weighted done BCE); returns the NLL,
    or None (and no step) when the loss is not finite."""
    idx = torch.as_tensor(
        rng.integers(0, len(data.train_idx), size=(model.ensemble_size, cfg.batch_size)),
        device=data.inputs.device,
    )
    mean, logvar, done_logit = model.forward_normalized(data.inputs[idx])  # [E,B,D] ×2, [E,B]
    done_logit = model.done_logit_from(done_logit, data.nxt[idx])  # real next states
    nll = (((mean - data.targets[idx]) ** 2) * torch.exp(-logvar) + logvar).mean()
    bce = F.binary_cross_entropy_with_logits(done_logit, data.term[idx], pos_weight=data.pos_weight)
    loss = nll + bce + cfg.logvar_bound_coef * model.logvar_bound_penalty()
    if not torch.isfinite(loss):
        return None
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return nll.detach()


def fit_world_model(
    model: EnsembleWorldModel,
    optimizer: Optimizer,
    replay: ReplayBuffer,
    cfg: WorldModelConfig,
    rng: np.random.Generator,
    device: torch.device | None = None,
) -> dict[str, float]:
    """Fit ``model`` on the replay's training split for ``cfg.train_steps`` steps; score it on the
    held-out split.

    Returns ``confidence``, ``model_loss`` (the held-out loss above) and diagnostics: held-out
    MSE/BCE per head, the last training NLL, done precision and recall (ensemble-mean probability
    > 0.5), ensemble disagreement, the split sizes, and ``update_skipped``.
    """
    device = device or torch.device("cpu")
    before = (copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict()))
    data = _prepare(model, replay, cfg, device)
    stopper = _EarlyStop(model, replay, data.hold_idx, cfg, device)
    model.train()
    last_nll = torch.zeros((), device=device)
    nll: torch.Tensor | None = last_nll
    steps = 0
    for steps in range(1, cfg.train_steps + 1):  # noqa: B007 - the count is reported
        nll = _gradient_step(model, optimizer, data, cfg, rng)
        if nll is None:
            break
        last_nll = nll
        if stopper.converged(steps):
            break
    model.eval()
    skipped = nll is None
    if skipped:
        model.load_state_dict(before[0])
        optimizer.load_state_dict(before[1])

    metrics = score_world_model(model, replay.get(data.hold_idx), device)
    if skipped or not math.isfinite(metrics["model_loss"]):
        metrics["confidence"] = 0.0
    metrics.update(
        update_skipped=float(skipped),
        train_steps=float(steps),
        train_nll=float(last_nll),
        done_pos_weight=float(data.pos_weight),
        n_train=float(len(data.train_idx)),
        n_holdout=float(len(data.hold_idx)),
    )
    return metrics


class _EarlyStop:
    """Every ``stop_check_every`` steps, the held-out MSE (ensemble mean, normalised units) on a
    fixed spread of up to ``stop_check_size`` held-out transitions: converged once ``stop_patience`` checks in
    a row beat the best so far by less than ``stop_min_improvement`` (relative). Draws no random
    numbers, so a fit that does not stop takes exactly the steps it took without the checks."""

    def __init__(
        self,
        model: EnsembleWorldModel,
        replay: ReplayBuffer,
        hold_idx: np.ndarray,
        cfg: WorldModelConfig,
        device: torch.device,
    ) -> None:
        self.model, self.cfg, self.device = model, cfg, device
        self.every = cfg.stop_check_every
        if self.every == 0:
            return
        size = cfg.stop_check_size
        spread = hold_idx[:: max(1, len(hold_idx) // size)][:size]
        obs, act, rew, nxt, _ = _tensors(replay.get(spread), device)
        # normalised once: the statistics are fixed for the whole fit
        self.inputs = model.normalized_input(obs, act)
        self.targets = model.normalized_targets(obs, nxt, rew)
        self.best, self.stale = self._mse(), 0

    def _mse(self) -> float:
        """:func:`member_heldout_mse` on the check's transitions, averaged over members."""
        self.model.eval()
        with torch.no_grad():
            mean, _, _ = self.model.forward_normalized(self.inputs)
            mse = float(((mean - self.targets) ** 2).mean(dim=(1, 2)).mean())
        self.model.train()
        return mse

    def converged(self, step: int) -> bool:
        if self.every == 0 or step % self.every:
            return False
        mse = self._mse()
        if mse < self.best * (1.0 - self.cfg.stop_min_improvement):
            self.best, self.stale = mse, 0
            return False
        self.best = min(self.best, mse)
        self.stale += 1
        return self.stale >= self.cfg.stop_patience


@torch.no_grad()
def member_heldout_mse(
    model: EnsembleWorldModel, data: Transitions, device: torch.device
) -> torch.Tensor:
    """Held-out MSE of each member on [Δs, r] in normalised units: ``[E]``."""
    obs, act, rew, nxt, _ = _tensors(data, device)
    mean, _, _ = model(obs, act)
    return ((mean - model.normalized_targets(obs, nxt, rew)) ** 2).mean(dim=(1, 2))


def fit_with_early_stopping(
    model: EnsembleWorldModel,
    optimizer: Optimizer,
    replay: ReplayBuffer,
    cfg: WorldModelConfig,
    rng: np.random.Generator,
    n_elites: int,
    max_epochs: int,
    patience: int,
    min_improvement: float = 0.01,  # relative; the default of mbpo.min_improvement
    device: torch.device | None = None,
) -> dict[str, Any]:
    """MBPO's model training: epochs over the training split until no member's held-out MSE
    improved by ``min_improvement`` (relative) for ``patience`` epochs; each member keeps its best
    weights, and the ``n_elites`` members with the lowest held-out MSE are the elites.

    Returns the :func:`score_world_model` metrics plus ``epochs``, ``elites`` (member indices),
    ``elite_mse`` and ``update_skipped`` (a non-finite loss undoes the update, as in
    :func:`fit_world_model`).
    """
    device = device or torch.device("cpu")
    before = (copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict()))
    data = _prepare(model, replay, cfg, device)
    holdout = replay.get(data.hold_idx)
    per_member = [
        p for p in model.parameters() if p.dim() >= 2 and p.shape[0] == model.ensemble_size
    ]
    best = member_heldout_mse(model, holdout, device)
    best_weights = [p.detach().clone() for p in per_member]
    steps_per_epoch = -(-len(data.train_idx) // cfg.batch_size)
    stale, epochs, skipped = 0, 0, False
    model.train()
    for epochs in range(1, max_epochs + 1):  # noqa: B007 - the count is reported
        for _ in range(steps_per_epoch):
            if _gradient_step(model, optimizer, data, cfg, rng) is None:
                skipped = True
                break
        if skipped:
            break
        mse = member_heldout_mse(model, holdout, device)
        improved = (best - mse) / best.clamp_min(1e-12) > min_improvement
        if improved.any():
            with torch.no_grad():
                for p, keep in zip(per_member, best_weights, strict=True):
                    keep[improved] = p[improved]
            best = torch.where(improved, mse, best)
            stale = 0
        else:
            stale += 1
            if stale >= patience:
                break
    model.eval()
    if skipped:
        model.load_state_dict(before[0])
        optimizer.load_state_dict(before[1])
    else:
        with torch.no_grad():
            for p, keep in zip(per_member, best_weights, strict=True):
                p.copy_(keep)
        best = member_heldout_mse(model, holdout, device)
    elites = torch.argsort(best)[:n_elites].tolist()
    metrics: dict[str, Any] = dict(score_world_model(model, holdout, device))
    metrics.update(
        epochs=float(epochs),
        elites=sorted(elites),
        elite_mse=float(best[elites].mean()),
        update_skipped=float(skipped),
        n_train=float(len(data.train_idx)),
        n_holdout=float(len(data.hold_idx)),
    )
    return metrics


@torch.no_grad()
def score_world_model(
    model: EnsembleWorldModel, data: Transitions, device: torch.device
) -> dict[str, float]:
    """Held-out losses in normalised units, confidence = exp(−their sum), and diagnostics."""
    obs, act, rew, nxt, term = _tensors(data, device)
    target = model.normalized_targets(obs, nxt, rew)
    mean, _, done_logit = model(obs, act)
    done_logit = model.done_logit_from(done_logit, nxt)
    d = model.obs_dim
    state_mse = ((mean[..., :d] - target[:, :d]) ** 2).mean()
    reward_mse = ((mean[..., d] - target[:, d]) ** 2).mean()
    done_bce = F.binary_cross_entropy_with_logits(done_logit, term.expand_as(done_logit))
    model_loss = float(state_mse + reward_mse + done_bce)

    predicted = torch.sigmoid(done_logit).mean(0) > 0.5
    actual = term > 0.5
    true_pos = float((predicted & actual).sum())
    return {
        "model_loss": model_loss,
        "confidence": math.exp(-model_loss),
        "heldout_state_mse": float(state_mse),
        "heldout_reward_mse": float(reward_mse),
        "heldout_done_bce": float(done_bce),
        "done_precision": true_pos / max(float(predicted.sum()), 1.0),
        "done_recall": true_pos / max(float(actual.sum()), 1.0),
        "disagreement": float(mean[..., :d].var(0, unbiased=False).mean()),
    }


def deepest_open_loop_error(errors: dict[str, float], kind: str = "") -> float | None:
    """The k-step error of :func:`open_loop_error` for the largest k measured (``kind="still_"``:
    the no-change reference's); ``None`` when nothing was measured."""
    prefix = f"open_loop_{kind}mse_"
    steps = [int(k.rsplit("_", 1)[1]) for k in errors if k.startswith(prefix)]
    return errors[f"{prefix}{max(steps)}"] if steps else None


def dynamics_changed(history: list[float], error: float, factor: float) -> bool:
    """The newest open-loop ``error`` is over ``factor`` × the median of the earlier ones (at
    least three of them): the model has become much worse at once, as after a change of dynamics."""
    return len(history) >= 3 and error > factor * float(np.median(history))


def open_loop_confidence(
    errors: dict[str, float], tolerance: float, relative: bool = False
) -> float:
    """Confidence from the k-step open-loop errors of :func:`open_loop_error` for the largest k
    measured: exp(−e_k / tolerance), or with ``relative`` the skill against predicting no change,
    clip(1 − e_k / e_still_k, 0, 1); 0 when nothing was measured (a model with no track record)."""
    error = deepest_open_loop_error(errors)
    if error is None or not math.isfinite(error):
        return 0.0
    if relative:
        reference = deepest_open_loop_error(errors, "still_")
        if reference is None or not math.isfinite(reference) or reference <= 0.0:
            return 0.0
        return min(1.0, max(0.0, 1.0 - error / reference))
    return math.exp(-error / tolerance)


@torch.no_grad()
def open_loop_error(
    model: EnsembleWorldModel,
    rollout: Rollout,
    horizon: int,
    device: torch.device | None = None,
    max_starts: int = OPEN_LOOP_MAX_STARTS,
) -> dict[str, float]:
    """k-step open-loop state error of the ensemble-mean model on real trajectories, k = 1..H.

    From up to ``max_starts`` evenly spaced real states, the model is stepped ``horizon`` times
    on its own predictions with the actions actually taken; step k is compared with the real state
    k steps on. A window stops at the end of its episode (k-step targets never cross a reset) and
    at the end of the rollout. The error is the mean squared difference per state dimension, in
    units of the state's standard deviation in the model's training data. Call it before fitting on
    ``rollout``: then every target is data the model has not seen. ``open_loop_still_mse_{k}`` is
    the same error for the reference prediction that the state stays where it was.
    """
    device = device or torch.device("cpu")
    steps, n_envs = rollout.ends.shape
    flat = np.arange(steps * n_envs)[:: max(1, steps * n_envs // max_starts)]
    t0, env = torch.as_tensor(flat // n_envs), torch.as_tensor(flat % n_envs)
    raw_obs = torch.as_tensor(rollout.raw_obs, device=device)
    raw_next = torch.as_tensor(rollout.raw_next_obs, device=device)
    actions, ends = rollout.actions.to(device), rollout.ends.to(device)
    state_std = model.in_std[: model.obs_dim]
    state = start = raw_obs[t0, env]
    alive = torch.ones(len(flat), dtype=torch.bool, device=device)
    errors: dict[str, float] = {}
    for k in range(1, horizon + 1):
        t = t0 + k - 1
        alive &= t < steps
        if not alive.any():
            break
        t = t.clamp_max(steps - 1)
        state = model.mean_step(state, actions[t, env])
        sq = (((state - raw_next[t, env]) / state_std) ** 2).mean(-1)
        errors[f"open_loop_mse_{k}"] = float(sq[alive].mean())
        # the reference: predicting that nothing changes for k steps
        still = (((start - raw_next[t, env]) / state_std) ** 2).mean(-1)
        errors[f"open_loop_still_mse_{k}"] = float(still[alive].mean())
        alive &= ~ends[t, env]
    return errors


@dataclass(frozen=True)
class ModelUpdate:
    """What section 2.2 hands on: the confidence 2.3 reads, and what 2.8 logs."""

    confidence: float
    """0 after a non-finite loss (the update was undone): nothing is imagined this iteration."""
    fit: dict[str, float]
    """:func:`fit_world_model`'s metrics (``confidence`` there is always the held-out one)."""
    open_loop: dict[str, float]
    """The k-step open-loop errors on the new real data, measured before the fit."""
    forgot: bool
    """The change test fired and the replay forgot all but the newest batch."""
    errors: list[float]
    """The change test's history of open-loop errors, for the next iteration."""
    gate: float = 1.0
    """The share of the planned imagination to run (``modules.trust``; 1 without the gate, 0
    after an undone update)."""
    policy_failed: bool = False
    """With the trust gate: a change was detected and the policy's returns fell with it."""

    def metrics(self) -> dict[str, float]:
        """``model_loss`` and the ``model/*`` diagnostics of section 2.8."""
        return {
            "model_loss": self.fit["model_loss"],
            "model/heldout_confidence": self.fit["confidence"],
            "model/forgot": float(self.forgot),
            "trust/gate": self.gate,
            **{
                f"model/{k}": v
                for k, v in self.fit.items()
                if k not in ("confidence", "model_loss")
            },
            **{f"model/{k}": v for k, v in self.open_loop.items()},
        }


def update_world_model(
    model: EnsembleWorldModel,
    optimizer: Optimizer,
    replay: ReplayBuffer,
    rollout: Rollout,
    errors: list[float],
    cfg: WorldModelConfig,
    newest: int,
    horizon: int,
    first: bool,
    rng: np.random.Generator,
    device: torch.device,
    trust: TrustGate | None = None,
    returns: Sequence[float] = (),
) -> ModelUpdate:
    """Section 2.2 as configured: measure the model's ``horizon``-step open-loop error on the new
    real trajectories it has not seen yet (not on the ``first`` iteration); with
    ``forget_factor``, take a jump of that error as a change of dynamics and keep only the
    ``newest`` real transitions; fit the model; take the confidence from the held-out loss (the
    pseudocode) or, with ``confidence=open_loop*``, from the open-loop error. With a ``trust``
    gate, the same error against the model's on the data it knows gives the gate, and a surprise
    past ``trust.forget`` makes the replay forget all but the newest batch; ``returns`` (of the
    episodes that ended in the new batch) tell whether the policy failed with the change."""
    open_loop = {} if first else open_loop_error(model, rollout, horizon, device)
    error, forgot, gate, policy_failed = deepest_open_loop_error(open_loop), False, 1.0, False
    detected = False  # the trust gate's change test fired
    if trust is not None:
        gate, detected = trust.observe(step_errors(open_loop))
        forgot = detected
    if cfg.forget_factor is not None and error is not None:
        changed = dynamics_changed(errors, error, cfg.forget_factor)
        forgot = forgot or changed
        errors = [] if changed else (errors + [error])[-cfg.forget_window :]
    if forgot:
        replay.keep_newest(newest)
    if trust is not None:
        policy_failed = trust.policy_failed(returns, forgot)
        if detected and trust.resets_model(policy_failed):
            trust.start_over("world_model", model)
            optimizer.state.clear()
    fit = fit_world_model(model, optimizer, replay, cfg, rng, device)
    if trust is not None:  # the model on data it knows: the batch it has just been fitted on
        trust.known(step_errors(open_loop_error(model, rollout, horizon, device)))
        open_loop = {**open_loop, "trust_surprise": trust.surprise}
    confidence = fit["confidence"]
    if cfg.confidence != "heldout" and not fit["update_skipped"]:
        confidence = open_loop_confidence(
            open_loop, cfg.confidence_tolerance, relative=cfg.confidence == "open_loop_skill"
        )
    gate = 0.0 if fit["update_skipped"] else gate
    return ModelUpdate(confidence, fit, open_loop, forgot, errors, gate, policy_failed)
