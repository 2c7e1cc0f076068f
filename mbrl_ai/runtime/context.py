"""The run context: environments, counters, evaluation schedule and logs of one training run."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv, VectorEnv

from mbrl_ai.collect import CollectState, check_env_output, start_collection
from mbrl_ai.config import Config
from mbrl_ai.core.buffers import Transitions
from mbrl_ai.core.errors import EndRun, NonFiniteError, RunInterrupted
from mbrl_ai.core.utils import (
    decode_plain,
    encode_plain,
    resident_memory_mb,
    resolve_device,
    rng_state,
    seed_everything,
    set_rng_state,
)
from mbrl_ai.envs import (
    EnvInfo,
    final_observations,
    get_env_state,
    inspect_env,
    make_vec_env,
    set_env_state,
)
from mbrl_ai.envs.change import change_wrapper
from mbrl_ai.logger import RunLogger
from mbrl_ai.modules import RunningMeanStd
from mbrl_ai.modules.actor import Policy
from mbrl_ai.runtime.evaluation import EVAL_SEED_OFFSET, EvaluationStopped, evaluate_policy

log = logging.getLogger(__name__)
# the logged ``episode_return`` is the mean over this many most recent finished real episodes
EPISODE_RETURN_WINDOW = 100


@dataclass
class RunResult:
    """What a finished run hands back to its caller (tests, benchmark scripts)."""

    out_dir: Path
    env_steps: int
    train_seconds: float
    evals: list[dict]
    threshold: float | None = None  # the evaluation threshold of "solved" (config or env spec)


@dataclass
class RunContext:
    """One run's environments, counters, evaluation schedule and logs."""

    cfg: Config
    info: EnvInfo
    device: torch.device
    envs: VectorEnv
    eval_envs: VectorEnv
    logger: RunLogger
    out_dir: Path
    collect: CollectState
    rng: np.random.Generator  # the loop's own draws (model minibatches, imagination start states)
    env_steps: int = 0
    iteration: int = 0
    recent_returns: list[float] = field(default_factory=list)  # last EPISODE_RETURN_WINDOW ones
    evals: list[dict] = field(default_factory=list)
    next_eval: int = 0
    last_checkpoint: Path | None = None  # kept up to date by the Checkpointer, for messages
    policy: Policy | None = None  # what maybe_evaluate runs, with its observation normaliser
    policy_obs_rms: RunningMeanStd | None = None
    # more fields for each evaluation's row (e.g. an exact return), or None to add nothing
    eval_extra: Callable[[], dict[str, float] | None] | None = None
    handed_on: int | None = None  # a signal the Checkpointer passed to a job manager's handler
    step_aware: bool = False  # the envs want the run's real-step count (``set_run_step``)
    # asked between evaluation steps (the Checkpointer sets it: a stop signal arrived)
    stop_requested: Callable[[], bool] | None = None
    eval_pending: bool = False  # an evaluation was stopped unfinished; it runs first on resume
    _previous_torch_modes: tuple[bool, bool] = (False, False)

    # -- set-up and tear-down -------------------------------------------------------------------

    def evaluate_with(
        self,
        policy: Policy,
        obs_rms: RunningMeanStd | None = None,
        extra: Callable[[], dict[str, float] | None] | None = None,
    ) -> None:
        """The policy (and the observation normaliser of its inputs) that evaluations run, and
        what else each evaluation reports (``extra``: more fields of its ``eval.jsonl`` row)."""
        self.policy, self.policy_obs_rms, self.eval_extra = policy, obs_rms, extra

    def open_logs(self, logger_state: dict[str, Any] | None = None) -> None:
        """Start the metric files at ``env_steps`` (cut back to it and continued when resuming)."""
        self.logger.open(self.env_steps, logger_state, self.eval_pending)

    def __enter__(self) -> RunContext:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: Any) -> None:
        """Close envs and logs; W&B learns whether the run finished, was interrupted or failed."""
        if torch.are_deterministic_algorithms_enabled() != self._previous_torch_modes[0]:
            # only when it changed: the call imports torch._inductor (and torch._dynamo), ~1 s
            torch.use_deterministic_algorithms(self._previous_torch_modes[0])
        torch.autograd.set_detect_anomaly(self._previous_torch_modes[1])
        self.envs.close()
        self.eval_envs.close()
        if exc is None or isinstance(exc, EndRun):
            code = 0
        elif isinstance(exc, RunInterrupted):
            code = exc.exit_code
        elif isinstance(exc, SystemExit) and self.handed_on is not None:
            code = 128 + self.handed_on  # a job manager took over (requeue): expected back
        else:
            code = 1
        self.logger.close(code)

    def result(self) -> RunResult:
        return RunResult(
            self.out_dir,
            self.env_steps,
            self.logger.train_seconds,
            self.evals,
            self.logger.threshold,
        )

    # -- during the loop ------------------------------------------------------------------------

    def step_envs(self, actions: np.ndarray, env_actions: np.ndarray) -> Transitions:
        """One step of every training env (off-policy loops): take ``env_actions``, refuse
        non-finite outputs, keep the episode bookkeeping of ``collect``, and return the real
        transitions with ``actions`` (the actions as the learner sees them, e.g. in [-1, 1])."""
        obs = self.collect.obs
        n = len(obs)
        next_obs, reward, term, trunc, infos = self.envs.step(env_actions)
        next_obs = next_obs.astype(np.float32).reshape(n, -1)
        done = term | trunc
        real_next = final_observations(next_obs, infos, done)
        check_env_output(self.envs, reward, real_next, next_obs if done.any() else None)
        c = self.collect
        c.episode_returns += reward
        c.episode_lengths += 1
        for i in np.flatnonzero(done):
            c.finished_returns.append(float(c.episode_returns[i]))
            c.finished_lengths.append(int(c.episode_lengths[i]))
            c.episode_returns[i], c.episode_lengths[i] = 0.0, 0
        c.obs = next_obs
        return Transitions(obs, actions, reward.astype(np.float32), real_next, term)

    def check_update(
        self, update: dict[str, float], keys: tuple[str, ...] = ("policy_loss", "value_loss")
    ) -> None:
        """Stop the run on a non-finite loss among ``keys``: the weights are lost from here."""
        for key in keys:
            if not math.isfinite(update[key]):
                raise NonFiniteError(
                    f"{key.replace('_', ' ')} is {update[key]} in the update of iteration "
                    f"{self.iteration + 1} (real step {self.env_steps}); the run stops, its last "
                    f"checkpoint is {self.last_checkpoint}; debug=true names the operation"
                )

    def maybe_evaluate(self) -> None:
        """Evaluate after the update that crosses a multiple of ``eval_every``, and at the end.

        A stop signal during the evaluation drops it (its random draws undone) and marks it
        pending: the checkpoint written at the stop holds the policy it was evaluating, and the
        resumed run evaluates that first (:meth:`evaluate_pending`), so that a long evaluation
        (a planner's) does not delay the stop and the run still resumes exactly."""
        if self.env_steps < self.next_eval and self.env_steps < self.cfg.total_timesteps:
            return
        assert self.policy is not None, "call evaluate_with(policy) before the loop"
        self.tell_envs_the_step(self.eval_envs)
        t = time.perf_counter()
        before = _random_state(self.policy)
        try:
            returns = evaluate_policy(
                self.policy,
                self.eval_envs,
                self.cfg.eval_episodes,
                self.cfg.seed + EVAL_SEED_OFFSET,
                self.policy_obs_rms,
                self.device,
                stop=self.stop_requested,
            )
        except EvaluationStopped:
            _set_random_state(self.policy, before)
            self.eval_pending = True
            log.warning(
                "the evaluation at real step %d was stopped unfinished; the run evaluates first "
                "when it resumes",
                self.env_steps,
            )
            return
        if not np.isfinite(returns).all():
            raise NonFiniteError(
                f"evaluation at real step {self.env_steps}: non-finite episode returns "
                f"{returns.tolist()} from {self.cfg.env}; the run stops, its checkpoints are kept"
            )
        self.eval_pending = False
        extra = self.eval_extra() if self.eval_extra is not None else None
        self.evals.append(
            self.logger.log_eval(self.env_steps, returns, time.perf_counter() - t, extra)
        )
        self.next_eval = (self.env_steps // self.cfg.eval_every + 1) * self.cfg.eval_every

    def evaluate_pending(self) -> bool:
        """Run the evaluation a stop signal cut short (right after resuming from its checkpoint,
        before anything trains); ``True`` if there was one."""
        if not self.eval_pending:
            return False
        self.eval_pending = False
        self.maybe_evaluate()  # due: ``next_eval`` did not move past the stopped one
        return True

    def log_iteration(self, record: dict[str, Any]) -> None:
        """2.8: one line of metrics; every loop adds the iteration, the mean return of the last
        ``EPISODE_RETURN_WINDOW`` finished episodes, the episodes finished now and resident
        memory (the loop's record carries its own learning rate, ``lr``)."""
        self.tell_envs_the_step(self.envs)  # before the next iteration's collection
        finished = self.collect.finished_returns
        self.recent_returns = (self.recent_returns + finished)[-EPISODE_RETURN_WINDOW:]
        self.logger.log_iteration(
            self.env_steps,
            {
                "iteration": self.iteration,
                **record,
                "episode_return": float(np.mean(self.recent_returns))
                if self.recent_returns
                else None,
                "episodes": len(finished),
                "rss_mb": resident_memory_mb(),
            },
        )

    def tell_envs_the_step(self, envs: VectorEnv) -> None:
        """Environments that change with the run's progress (``mbrl_ai.envs.conditions``) learn its
        real-step count; others are left alone."""
        if self.step_aware:
            assert isinstance(envs, (SyncVectorEnv, AsyncVectorEnv))  # make_vec_env's kinds
            envs.call("set_run_step", self.env_steps)

    # -- checkpointed state ---------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Counters, evaluations, collection and environment state, the loop's generator, logs."""
        return {
            "env_steps": self.env_steps,
            "iteration": self.iteration,
            "recent_returns": list(self.recent_returns),
            "evals": encode_plain(self.evals),
            "next_eval": self.next_eval,
            "eval_pending": self.eval_pending,
            "collect": encode_plain(dataclasses.asdict(self.collect)),
            "envs": get_env_state(self.envs),
            "run_rng": self.rng.bit_generator.state,
            "logger": self.logger.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.env_steps, self.iteration = state["env_steps"], state["iteration"]
        self.recent_returns = list(state["recent_returns"])
        self.evals, self.next_eval = decode_plain(state["evals"]), state["next_eval"]
        self.eval_pending = bool(state.get("eval_pending", False))  # older checkpoints: none
        if state["envs"] is not None:
            set_env_state(self.envs, state["envs"])
            self.collect = CollectState(**decode_plain(state["collect"]))
        else:
            log.warning(
                "the environments' state could not be saved (async vector env, or state that is "
                "not plain values): the episodes running at the checkpoint start over"
            )
            self.collect = start_collection(self.envs, self.cfg.seed + self.env_steps)
        self.rng.bit_generator.state = state["run_rng"]


def _random_state(policy: Policy) -> dict[str, Any]:
    """The global generators and the policy's own (a planner's), to undo an evaluation's draws."""
    generator = getattr(policy, "generator", None)
    own = generator.get_state() if isinstance(generator, torch.Generator) else None
    return {"global": rng_state(), "policy": own}


def _set_random_state(policy: Policy, state: dict[str, Any]) -> None:
    set_rng_state(state["global"])
    if state["policy"] is not None:
        policy.generator.set_state(state["policy"])  # type: ignore[attr-defined]


def start_run(cfg: Config, out_dir: Path) -> RunContext:
    """Seed everything, set torch's modes, and build the envs, the collection state, the loop's
    generator and the logger for ``cfg``."""
    previous_modes = (torch.are_deterministic_algorithms_enabled(), torch.is_anomaly_enabled())
    torch.set_num_threads(cfg.torch_threads)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it to comply
        torch.use_deterministic_algorithms(True)
    torch.autograd.set_detect_anomaly(cfg.debug)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    info = inspect_env(cfg.env, cfg.env_kwargs)
    threshold = cfg.eval_threshold if cfg.eval_threshold is not None else info.reward_threshold
    change = change_wrapper(cfg.env_change, cfg.seed)  # None: the world stays as it is
    envs = make_vec_env(
        cfg.env, cfg.n_envs, cfg.seed, cfg.vectorization, cfg.env_kwargs, wrapper=change
    )
    eval_envs = make_vec_env(
        cfg.env,
        min(cfg.eval_n_envs, cfg.eval_episodes),
        cfg.seed + EVAL_SEED_OFFSET,
        cfg.vectorization,
        cfg.env_kwargs,
        default_time_limit=cfg.eval_max_steps,
        wrapper=change,
    )
    run = RunContext(
        cfg,
        info,
        device,
        envs,
        eval_envs,
        RunLogger(out_dir, cfg, threshold, str(device)),
        Path(out_dir),
        start_collection(envs, cfg.seed),
        np.random.default_rng(cfg.seed),
        next_eval=cfg.eval_every,
        _previous_torch_modes=previous_modes,
    )
    run.step_aware = info.step_aware or change is not None
    run.tell_envs_the_step(envs)
    run.tell_envs_the_step(eval_envs)
    return run
