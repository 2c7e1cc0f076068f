"""The model-rollout engine: a batch of rollouts through the learned ensemble, advanced together.

MB-PPO's imagination (``imagine.py``) and MBPO's branched rollouts (``branched_rollouts.py``) both
run on :func:`model_rollouts`; the planners to come will too. Per step, for all R rollouts at once:

    a, log π(a|s)  = act(s)                                   one policy pass
    member         = uniform over ``members`` (all, or the elites), one per rollout and step
    s', r, p_done  = that member's prediction (its Gaussian sampled, or its mean)
    disagreement   = variance of the members' mean next states (when asked for)

One done rule: a known termination function of s' when given, else the learned done head with
``p_done > done_threshold``. One disagreement-stop rule: a transition whose members disagree by more
than ``disagreement_stop`` is not trusted, so it is dropped and its rollout ends at the previous step
(cut there: the value of that step's next state is still a fair bootstrap). A rollout ends at a
done, at a stop or at the horizon; ended rollouts are masked, not removed, and the loop stops once
none is left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from mbrl_ai.envs.termination import TerminationFn
from mbrl_ai.modules.world_model import EnsembleWorldModel

# raw states [R, obs_dim] -> (actions, log-probabilities [R])
ActFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class ModelRollouts:
    """Rollouts time-major ``[H, R]``: column r is rollout r, row h its step h."""

    states: torch.Tensor  # [H + 1, R, obs_dim] ŝ_0..ŝ_H in environment units
    actions: torch.Tensor  # [H, R] or [H, R, act_dim]
    log_probs: torch.Tensor  # [H, R] as returned by ``act``
    rewards: torch.Tensor  # [H, R] the model's reward in environment units
    terminated: torch.Tensor  # [H, R] bool: a done at a valid step (no bootstrap)
    valid: torch.Tensor  # [H, R] bool: the step belongs to its rollout
    entered: torch.Tensor  # [H, R] bool: the rollout was alive when step h began (before the stop)
    disagreement: torch.Tensor | None  # [H, R] when computed at every step

    @property
    def cut(self) -> torch.Tensor:
        """[H, R] bool: the last step of a rollout that did not terminate (horizon or stop):
        bootstrap there from the value of its next state."""
        after = torch.zeros_like(self.valid)
        after[:-1] = self.valid[1:]
        return self.valid & ~self.terminated & ~after

    @property
    def lengths(self) -> torch.Tensor:
        return self.valid.sum(0)


# what :func:`model_rollouts` records per step, stacked into :class:`ModelRollouts`
_ROWS = ("states", "actions", "log_probs", "rewards", "terminated", "valid", "entered")


def _model_step(
    model: EnsembleWorldModel,
    state: torch.Tensor,
    action: torch.Tensor,
    members: torch.Tensor | None,
    sample: bool,
    need_disagreement: bool,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One model step of every rollout: each from a member drawn out of ``members``, or, with
    ``members=None``, as :meth:`EnsembleWorldModel.step` draws (and scores disagreement)."""
    if members is None:
        return model.step(state, action, sample, need_disagreement, generator)
    n = state.shape[0]
    pick = torch.randint(len(members), (n,), device=state.device, generator=generator)
    return model.predict(state, action, members[pick], sample)


@torch.no_grad()
def model_rollouts(
    model: EnsembleWorldModel,
    act: ActFn,
    starts: torch.Tensor,
    horizon: int,
    *,
    members: torch.Tensor | None = None,
    sample: bool = True,
    done_fn: TerminationFn | None = None,
    done_threshold: float = 0.5,
    disagreement_stop: float | None = None,
    record_disagreement: bool = False,
    depth_fn: Callable[[float], int] | None = None,
    generator: torch.Generator | None = None,
) -> ModelRollouts:
    """Roll ``starts`` ``[R, obs_dim]`` forward for at most ``horizon`` steps.

    ``members``: the ensemble members to draw from (``None``: all of them; then, when no
    disagreement is needed, only the drawn members are computed). ``depth_fn`` maps the mean
    disagreement at the first step to the depth actually rolled (adaptive depth, at most
    ``horizon`` is not enforced: the function owns its bounds). ``record_disagreement`` computes
    the disagreement at every step even without a stop rule.
    """
    n, device = starts.shape[0], starts.device
    alive = torch.ones(n, dtype=torch.bool, device=device)
    state = starts
    rows: dict[str, list[torch.Tensor]] = {k: [] for k in _ROWS}
    disagreements: list[torch.Tensor] = []
    need_always = disagreement_stop is not None or record_disagreement
    depth, h = horizon, 0
    while h < depth:
        action, log_prob = act(state)
        need = need_always or (depth_fn is not None and h == 0)
        next_state, reward, done_p, disagreement = _model_step(
            model, state, action, members, sample, need, generator
        )
        if h == 0 and depth_fn is not None:
            assert disagreement is not None
            depth = depth_fn(float(disagreement.mean()))
        entered = alive
        if disagreement_stop is not None:
            assert disagreement is not None
            alive = alive & (disagreement <= disagreement_stop)
        done = done_fn(next_state) if done_fn is not None else done_p > done_threshold
        for key, value in zip(
            _ROWS, (state, action, log_prob, reward, done & alive, alive, entered), strict=True
        ):
            rows[key].append(value)
        if need_always:
            assert disagreement is not None
            disagreements.append(disagreement)
        alive = alive & ~done
        state = next_state
        h += 1
        if not alive.any():
            break
    stack = {k: torch.stack(v) for k, v in rows.items()}
    return ModelRollouts(
        states=torch.cat([stack["states"], state.unsqueeze(0)]),
        actions=stack["actions"],
        log_probs=stack["log_probs"],
        rewards=stack["rewards"],
        terminated=stack["terminated"],
        valid=stack["valid"],
        entered=stack["entered"],
        disagreement=torch.stack(disagreements) if disagreements else None,
    )
