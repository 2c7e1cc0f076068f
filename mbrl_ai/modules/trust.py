"""How far imagination may be trusted: a gate from the world model's surprise on fresh real data.

Each iteration, before the model is refitted, its H-step open-loop error on the newest real batch
(data it has never seen, ``e_new``) is compared with the same error on the previous batch right
after it was fitted on it (data it knows, ``e_known``). Their ratio is the model's generalisation
gap; in a stationary world it settles at some level of its own (a few times, since H-step errors
grow with the data's novelty). The **surprise** is that ratio over its median in the recent
iterations at full trust:

    surprise_t = (e_new_t / e_known_{t-1}) / median(recent ratios at gate 1)
    gate_t     = clip((log hi − log surprise_t) / (log hi − log lo), 0, 1)

so the gate is 1 while the model is as good on new data as it usually is, falls to 0 when it is
``hi`` times worse than usual (the world changed, or the policy went somewhere the model has never
been), and comes back as the refitted model predicts fresh data as well as it used to. The gate
scales the imagined share of PPO's batch (``trainer.py``): at 0 MB-PPO is PPO on real data. A
surprise far beyond the gate's range (``forget``: the world changed) makes the model's replay drop
all but the newest real batch and the model start over from its initial weights, so that it
relearns the new dynamics from their own data; if the policy's returns fell with it, the actor and
critic start over too (``reset_model``, ``restart_policy``; ``reset_model_on=policy_drop`` starts
the model over only with the policy, and otherwise refits the old one on the new data). Both
errors are taken at the deepest horizon k that both batches reach (episodes may end sooner).

Unlike ensemble disagreement, the test does not trust the model's opinion of itself: every member
may have learned the same wrong thing, but none has seen the new batch.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
import torch

from mbrl_ai.core.ranges import Ge, Gt, In, OneOf, need


@dataclass
class TrustConfig:
    """The trust gate of MB-PPO's imagination (``mbrl_ai.modules.trust``); off, the pseudocode."""

    gate: bool = False
    """Scale the imagined rollouts by the gate (0: PPO on real data only this iteration)."""
    lo: Annotated[float, Gt(1.0)] = 3.0
    """Surprise at and below which the gate is fully open."""
    hi: Annotated[float, Gt(1.0)] = 30.0
    """Surprise at and above which the gate is shut."""
    window: Annotated[int, Ge(1)] = 10
    """Ratios at full trust that the surprise's reference (their median) is taken over."""
    horizon: Annotated[int | None, Ge(1)] = None
    """The open-loop depth k whose errors are compared: the deepest both batches reach, at most
    this; ``null``: the deepest (up to the model's diagnostic horizon). Near an unstable
    equilibrium (an upright pendulum) a deep open-loop error grows exponentially with a small
    model error and swings by orders of magnitude between batches of an unchanged world.
    Measured in ``experiments/nonstationary`` (``horizon=1``, ``reference=floor``): no spurious
    forget on Pendulum, every CartPole change caught, but no better re-solving; off by default."""
    reference: Annotated[str, OneOf(("last", "floor"))] = "last"
    """The error on data the model knows that the new batch's error is divided by: on the batch
    it was last fitted on (``last``), or that but at least its median over the last ``window``
    batches (``floor``: a batch the model happens to predict almost perfectly, a pendulum
    resting upright, does not make the next ratio explode)."""
    warmup: Annotated[int, Ge(0)] = 3
    """The first iterations measured only feed the reference (the gate stays open)."""
    forget: Annotated[float | None, Gt(1.0)] = 100.0
    """A surprise at or above this is taken as a change of the world: the model's replay keeps
    only the newest real batch (at most once per ``window`` iterations: after a forget the replay
    holds only new data); ``null`` never forgets."""

    reset_model: bool = True
    """When the replay forgets, the world model starts over too (its initial weights, fresh
    optimiser moments): dropping the old data does not make the weights forget, and in states
    the new data have not reached yet an old model goes on predicting the old world."""
    reset_model_on: Annotated[str, OneOf(("change", "policy_drop"))] = "change"
    """When the model starts over (with ``reset_model``): at every detected change, or only at
    one whose returns fell by ``policy_drop`` too. A change the old policy survives is a world
    close to the old one, where the old model, refitted on the new data, might be a better start
    than an empty one (its replay still forgets). Measured in ``experiments/nonstationary``: it
    was not (slower on 7 of 40 seed-cells, faster on 2), so the default stays ``change``."""
    restart_policy: bool = True
    """When the replay forgets (a change) and the policy's real returns have also fallen by
    ``policy_drop``, the actor and critic start over from a fresh initialisation (and their
    optimiser's moments): the relearned model re-solves from scratch faster than PPO unlearns
    what the old world taught it."""
    ramp: Annotated[int | None, Ge(1)] = None
    """After a forget, imagination comes back over this many iterations at most: the gate is
    capped at (iterations since the forget) / ``ramp``, so a model restarted on a few hundred
    transitions is not trusted in full at once; ``null``: only the gate decides. Measured in
    ``experiments/nonstationary`` (``ramp=4``): slower than without on mild changes, no faster
    on the reversal."""
    policy_drop: Annotated[float, In(0.0, 1.0, "()")] = 0.5
    """... the fall of the mean episode return, as a share of its median over the last
    ``window`` iterations before (of its size, for negative returns)."""

    def check(self, c: Any) -> None:
        need(self.hi > self.lo, "trust.hi", self.hi, f"must be > trust.lo ({self.lo})")


@dataclass
class TrustGate:
    """The gate's state between iterations (checkpointed): the reference ratios, the error of the
    model on the data it last fitted, and the last gate."""

    cfg: TrustConfig
    ratios: list[float] = field(default_factory=list)
    known_errors: dict[int, float] = field(default_factory=dict)  # k -> k-step error, known data
    known_history: list[dict[int, float]] = field(default_factory=list)  # the last ``window``
    gate: float = 1.0
    surprise: float = 1.0
    measured: int = 0
    since_forget: int = 1_000_000
    returns: list[float] = field(default_factory=list)  # mean episode return, recent iterations
    # the modules' weights at the start of the run, to start over from (the same on a resume:
    # they come from the seed, before any checkpoint is loaded; not checkpointed)
    initial: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def remember(self, **modules: torch.nn.Module) -> None:
        """Keep copies of these modules' initial weights."""
        for name, module in modules.items():
            self.initial[name] = copy.deepcopy(module.state_dict())

    def start_over(self, name: str, module: torch.nn.Module) -> None:
        """Give ``module`` back the initial weights kept under ``name``."""
        module.load_state_dict(self.initial[name])

    def observe(self, new_errors: dict[int, float]) -> tuple[float, bool]:
        """Take the model's k-step errors on the newest, unseen batch; return the gate (capped
        by ``ramp`` after a forget) and whether the replay should forget (a change detected)."""
        gate, forget = self._observe(new_errors)
        if self.cfg.ramp is not None:
            gate = min(gate, self.since_forget / self.cfg.ramp)
        return gate, forget

    def _observe(self, new_errors: dict[int, float]) -> tuple[float, bool]:
        self.since_forget += 1
        common = set(new_errors) & set(self.known_errors)
        if not common:  # nothing to compare with yet: keep the last gate
            return self.gate, False
        if self.cfg.horizon is not None:
            common = {k for k in common if k <= self.cfg.horizon} or {min(common)}
        k = max(common)  # the deepest horizon both batches reach (episodes may end sooner)
        known = self.known_errors[k]
        history = [e[k] for e in self.known_history if k in e]
        if self.cfg.reference == "floor" and history:
            known = max(known, float(np.median(history)))
        ratio = max(new_errors[k], 1e-12) / max(known, 1e-12)
        ratio = ratio if math.isfinite(ratio) else math.inf
        self.measured += 1
        if self.measured <= self.cfg.warmup or not self.ratios:
            self.ratios = (self.ratios + [ratio])[-self.cfg.window :]
            self.surprise = 1.0
            return self.gate, False
        self.surprise = ratio / float(np.median(self.ratios))
        self.gate = gate_value(self.surprise, self.cfg.lo, self.cfg.hi)
        if self.gate >= 1.0:
            self.ratios = (self.ratios + [ratio])[-self.cfg.window :]
        forget = self.cfg.forget is not None and not self.surprise < self.cfg.forget
        if forget and self.since_forget > self.cfg.window:
            self.since_forget = 0
            self.known_history = []  # errors of a model fitted to the old world
            return self.gate, True
        return self.gate, False

    def known(self, errors: dict[int, float]) -> None:
        """Take the model's k-step errors on the batch it has just been fitted on."""
        if errors and all(math.isfinite(e) for e in errors.values()):
            self.known_errors = dict(errors)
            self.known_history = (self.known_history + [dict(errors)])[-self.cfg.window :]

    def policy_failed(self, finished: Sequence[float], changed: bool) -> bool:
        """Take the returns of the episodes that ended this iteration; whether, at a detected
        change, their mean fell by ``policy_drop`` of the recent level."""
        if not finished:
            return False
        now = float(np.mean(finished))
        before = float(np.median(self.returns)) if self.returns else None
        self.returns = (self.returns + [now])[-self.cfg.window :]
        if not changed or before is None:
            return False
        return before - now > self.cfg.policy_drop * max(abs(before), 1e-8)

    def resets_model(self, policy_failed: bool) -> bool:
        """At a detected change: whether the world model starts over (``reset_model``,
        ``reset_model_on``)."""
        if not self.cfg.reset_model:
            return False
        return self.cfg.reset_model_on == "change" or policy_failed

    def state_dict(self) -> dict[str, Any]:
        return {
            "returns": list(self.returns),
            "ratios": list(self.ratios),
            "known_errors": {str(k): e for k, e in self.known_errors.items()},
            "known_history": [{str(k): e for k, e in h.items()} for h in self.known_history],
            "gate": self.gate,
            "surprise": self.surprise,
            "measured": self.measured,
            "since_forget": self.since_forget,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.returns = [float(r) for r in state["returns"]]
        self.ratios = [float(r) for r in state["ratios"]]
        self.known_errors = {int(k): float(e) for k, e in state["known_errors"].items()}
        self.known_history = [  # (absent from checkpoints written before it existed)
            {int(k): float(e) for k, e in h.items()} for h in state.get("known_history", [])
        ]
        self.gate, self.surprise = float(state["gate"]), float(state["surprise"])
        self.measured, self.since_forget = int(state["measured"]), int(state["since_forget"])


def step_errors(open_loop: dict[str, float]) -> dict[int, float]:
    """k -> the k-step open-loop error, from :func:`mbrl_ai.fit_model.open_loop_error`'s keys."""
    prefix = "open_loop_mse_"
    return {int(k[len(prefix) :]): v for k, v in open_loop.items() if k.startswith(prefix)}


def gate_value(surprise: float, lo: float, hi: float) -> float:
    """1 at or below ``lo``, 0 at or above ``hi``, linear in log-surprise between."""
    if math.isnan(surprise) or surprise >= hi:  # NaN: a model that cannot be scored
        return 0.0
    if surprise <= lo:
        return 1.0
    if surprise >= hi:
        return 0.0
    return (math.log(hi) - math.log(surprise)) / (math.log(hi) - math.log(lo))
