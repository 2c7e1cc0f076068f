"""What every PPO-based loop shares: building a run, evaluating, logging, checkpointing, resuming
and stopping it.

``algos/ppo.py`` and ``trainer.py`` both start from :func:`start_run`, add the state of their own
sections with :meth:`Run.track`, and use the run as a context manager:

    run = start_run(cfg, out_dir)
    run.track(world_model=model, replay=replay, ...)
    with run:
        loop = run.begin()                 # resumes from the run directory's newest checkpoint
        while run.env_steps < cfg.total_timesteps:
            ...                            # the sections
            run.log_iteration({...})
            run.end_iteration(beta=beta)   # checkpoint when due; stop here on SIGINT / SIGTERM
        run.finish(beta=beta)              # the final checkpoint

A checkpoint holds everything the next iteration depends on, so a resumed run continues exactly
as the uninterrupted one would have: every tracked module, optimiser and normaliser, the replay
(as arrays), the collection state (current observations, running episode returns), the
environments' own state and random generators (``envs.get_env_state``), the global RNG states of
python, numpy and torch, the run's numpy generator, counters, evaluations, the loop's own values
(β ...), the logger's clocks and W&B run id, the resolved config and the package version.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
from gymnasium.vector import VectorEnv

import mbrl_ai
from mbrl_ai.checkpoint import latest_checkpoint, read_checkpoint, write_checkpoint
from mbrl_ai.collect import CollectState, start_collection
from mbrl_ai.config import Config, config_dict
from mbrl_ai.envs import (
    EnvInfo,
    get_env_state,
    inspect_env,
    make_vec_env,
    set_env_state,
)
from mbrl_ai.errors import NonFiniteError, RunInterrupted
from mbrl_ai.evaluation import EVAL_SEED_OFFSET, evaluate_policy
from mbrl_ai.logger import RunLogger
from mbrl_ai.modules import Actor, Critic, RunningMeanStd
from mbrl_ai.utils import (
    decode_plain,
    encode_plain,
    resident_memory_mb,
    resolve_device,
    rng_state,
    seed_everything,
    set_rng_state,
)

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = 1
# the logged ``episode_return`` is the mean over this many most recent finished real episodes
EPISODE_RETURN_WINDOW = 100
# signals after which a run finishes its iteration, writes a checkpoint and stops
STOP_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)


@dataclass
class RunResult:
    """What a finished run hands back to its caller (tests, benchmark scripts)."""

    out_dir: Path
    env_steps: int
    train_seconds: float
    evals: list[dict]


@dataclass
class Run:
    """The objects and counters a training loop works with."""

    cfg: Config
    info: EnvInfo
    device: torch.device
    envs: VectorEnv
    eval_envs: VectorEnv
    actor: Any  # Actor (PPO) or SquashedGaussianActor (SAC): has mode() and discrete
    critic: Any
    optimizer: torch.optim.Optimizer  # the one whose learning rate is logged
    obs_rms: RunningMeanStd | None
    reward_rms: RunningMeanStd | None
    logger: RunLogger
    out_dir: Path
    collect: CollectState
    rng: np.random.Generator  # the loop's own draws (model minibatches, imagination start states)
    env_steps: int = 0
    iteration: int = 0
    recent_returns: list[float] = field(default_factory=list)  # last EPISODE_RETURN_WINDOW ones
    evals: list[dict] = field(default_factory=list)
    next_eval: int = 0
    tracked: dict[str, Any] = field(default_factory=dict)
    last_checkpoint: Path | None = None
    stop_signal: int | None = None
    _next_checkpoint: int = 0
    _previous_handlers: dict[int, Any] = field(default_factory=dict)
    _handed_on: int | None = None  # a signal passed to a job manager's handler, while it runs
    _previous_torch_modes: tuple[bool, bool] = (False, False)

    # -- set-up -------------------------------------------------------------------------------

    def track(self, **objects: Any) -> None:
        """Checkpoint these objects too (anything with ``state_dict`` / ``load_state_dict``;
        ``arrays`` / ``load_arrays`` for large numpy state). ``None`` values are skipped."""
        self.tracked.update({k: v for k, v in objects.items() if v is not None})

    def begin(self) -> dict[str, Any]:
        """Resume from the newest checkpoint in the run directory if there is one; open the logs;
        take over SIGINT and SIGTERM. Returns the loop values saved by :meth:`end_iteration`
        (``{}`` for a fresh run)."""
        loop: dict[str, Any] = {}
        logger_state = None
        self.last_checkpoint = latest_checkpoint(self.out_dir)
        if self.last_checkpoint is not None:
            state, arrays = read_checkpoint(self.last_checkpoint)
            loop, logger_state = self._restore(state, arrays), state["logger"]
        self.logger.open(self.env_steps, logger_state)
        self._next_checkpoint = self._following_checkpoint()
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
        return loop

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: Any) -> None:
        """Close envs and logs; W&B learns whether the run finished, was interrupted or failed."""
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()
        torch.use_deterministic_algorithms(self._previous_torch_modes[0])
        torch.autograd.set_detect_anomaly(self._previous_torch_modes[1])
        self.envs.close()
        self.eval_envs.close()
        if exc is None:
            code = 0
        elif isinstance(exc, RunInterrupted):
            code = exc.exit_code
        elif isinstance(exc, SystemExit) and self._handed_on is not None:
            code = 128 + self._handed_on  # a job manager took over (requeue): expected back
        else:
            code = 1
        self.logger.close(code)

    def result(self) -> RunResult:
        return RunResult(self.out_dir, self.env_steps, self.logger.train_seconds, self.evals)

    # -- during the loop ------------------------------------------------------------------------

    def set_lr(self) -> None:
        """Linear learning-rate annealing to 0 over ``total_timesteps`` (when enabled)."""
        if self.cfg.ppo.anneal_lr:
            for group in self.optimizer.param_groups:
                group["lr"] = self.cfg.lr_actor_critic * (
                    1.0 - self.env_steps / self.cfg.total_timesteps
                )

    def check_update(self, update: dict[str, float]) -> None:
        """Stop the run on a non-finite policy or value loss: the weights are lost from here."""
        for key in ("policy_loss", "value_loss"):
            if not math.isfinite(update[key]):
                raise NonFiniteError(
                    f"{key.replace('_', ' ')} is {update[key]} in the update of iteration "
                    f"{self.iteration + 1} (real step {self.env_steps}); the run stops, its last "
                    f"checkpoint is {self.last_checkpoint}; debug=true names the operation"
                )

    def maybe_evaluate(self) -> None:
        """Evaluate after the update that crosses a multiple of ``eval_every``, and at the end."""
        if self.env_steps < self.next_eval and self.env_steps < self.cfg.total_timesteps:
            return
        t = time.perf_counter()
        returns = evaluate_policy(
            self.actor,
            self.eval_envs,
            self.cfg.eval_episodes,
            self.cfg.seed + EVAL_SEED_OFFSET,
            self.obs_rms,
            self.device,
        )
        self.evals.append(self.logger.log_eval(self.env_steps, returns, time.perf_counter() - t))
        self.next_eval = (self.env_steps // self.cfg.eval_every + 1) * self.cfg.eval_every

    def log_iteration(self, record: dict[str, Any]) -> None:
        """2.8: one line of metrics; every loop adds the iteration, the mean return of the last
        ``EPISODE_RETURN_WINDOW`` finished episodes, the episodes finished now, the learning rate
        and resident memory."""
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
                "lr": self.optimizer.param_groups[0]["lr"],
                "rss_mb": resident_memory_mb(),
            },
        )

    def end_iteration(self, **loop: Any) -> None:
        """Write a checkpoint when one is due; after SIGINT / SIGTERM, write one and stop.

        ``loop`` holds the loop's own values that the next iteration needs (plain values or
        dataclasses of them); :meth:`begin` hands them back on resumption.
        """
        due = self.cfg.checkpoint_every > 0 and self.env_steps >= self._next_checkpoint
        if due or self.stop_signal is not None:
            self.checkpoint(**loop)
        if self.stop_signal is None:
            return
        signum, self.stop_signal = self.stop_signal, None
        handler = self._previous_handlers.get(signum)
        if callable(handler) and handler is not signal.default_int_handler:
            # A job manager handled this signal before the run began (submitit requeues a
            # preempted SLURM job on SIGUSR2 and ignores SIGTERM): now that the checkpoint is
            # safe, hand the signal on. If the manager returns, the run goes on.
            self._handed_on = signum
            handler(signum, None)
            self._handed_on = None
            return
        raise RunInterrupted(signum, self.last_checkpoint, self.env_steps)

    def finish(self, **loop: Any) -> None:
        """The final checkpoint (unless the last iteration just wrote it)."""
        if self.last_checkpoint is None or not self.last_checkpoint.name.endswith(
            f"{self.env_steps:012d}"
        ):
            self.checkpoint(**loop)

    # -- checkpoints ----------------------------------------------------------------------------

    def checkpoint(self, **loop: Any) -> Path:
        state = {
            "format": CHECKPOINT_FORMAT,
            "version": mbrl_ai.__version__,
            "config": config_dict(self.cfg),
            "env_steps": self.env_steps,
            "iteration": self.iteration,
            "recent_returns": list(self.recent_returns),
            "evals": encode_plain(self.evals),
            "next_eval": self.next_eval,
            "collect": encode_plain(dataclasses.asdict(self.collect)),
            "envs": get_env_state(self.envs),
            "rng": rng_state(),
            "run_rng": self.rng.bit_generator.state,
            "logger": self.logger.state_dict(),
            "loop": encode_plain(
                {
                    k: (
                        dataclasses.asdict(v)
                        if dataclasses.is_dataclass(v) and not isinstance(v, type)
                        else v
                    )
                    for k, v in loop.items()
                }
            ),
            "objects": {name: obj.state_dict() for name, obj in self.tracked.items()},
        }
        arrays = {
            f"{name}/{key}": value
            for name, obj in self.tracked.items()
            if hasattr(obj, "arrays")
            for key, value in obj.arrays().items()
        }
        self.last_checkpoint = write_checkpoint(
            self.out_dir, self.env_steps, state, arrays, self.cfg.keep_checkpoints
        )
        self._next_checkpoint = self._following_checkpoint()
        return self.last_checkpoint

    def _following_checkpoint(self) -> int:
        every = self.cfg.checkpoint_every
        return (self.env_steps // every + 1) * every if every > 0 else 0

    def _restore(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        if set(state["objects"]) != set(self.tracked):
            raise ValueError(
                f"the checkpoint holds {sorted(state['objects'])}, this run has "
                f"{sorted(self.tracked)}: it was written by another configuration"
            )
        for name, obj in self.tracked.items():
            obj.load_state_dict(state["objects"][name])
            if hasattr(obj, "load_arrays"):
                prefix = f"{name}/"
                obj.load_arrays(
                    {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
                )
        self.env_steps, self.iteration = state["env_steps"], state["iteration"]
        self.recent_returns = list(state["recent_returns"])
        self.evals, self.next_eval = decode_plain(state["evals"]), state["next_eval"]
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
        set_rng_state(state["rng"])  # last: nothing above may draw from them
        log.info("resumed from %s at real step %d", self.last_checkpoint, self.env_steps)
        return decode_plain(state["loop"])

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_signal is not None:  # the second one: stop now, without a checkpoint
            raise KeyboardInterrupt
        self.stop_signal = signum
        log.warning(
            "%s: finishing this iteration, then writing a checkpoint (send again to abort)",
            signal.Signals(signum).name,
        )


def build_actor_critic(cfg: Config, info: EnvInfo) -> tuple[Actor, Critic]:
    n = cfg.network
    actor = Actor(
        info.obs_dim,
        info.action_space,
        list(n.actor_hidden),
        n.activation,
        n.ortho_init,
        n.log_std_init,
    )
    critic = Critic(info.obs_dim, list(n.critic_hidden), n.activation, n.ortho_init)
    return actor, critic


def build_ppo_agent(
    cfg: Config, info: EnvInfo, device: torch.device
) -> tuple[Any, Any, torch.optim.Optimizer, dict[str, Any]]:
    """PPO's actor, critic and their one Adam; (actor, critic, optimiser, objects to checkpoint)."""
    actor, critic = (m.to(device) for m in build_actor_critic(cfg, info))
    optimizer = torch.optim.Adam(
        [*actor.parameters(), *critic.parameters()],
        lr=cfg.lr_actor_critic,
        eps=cfg.ppo.adam_eps,
        fused=True,  # one kernel for all parameters: the fastest Adam step on CPU and GPU
    )
    return (
        actor,
        critic,
        optimizer,
        {"actor": actor, "critic": critic, "optimizer": optimizer},
    )


def start_run(cfg: Config, out_dir: Path, build_agent: Any = build_ppo_agent) -> Run:
    """Seed, build envs, the agent's networks and optimiser (``build_agent``), normalisers and
    logger for ``cfg``."""
    previous_modes = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_anomaly_enabled(),
    )
    torch.set_num_threads(cfg.torch_threads)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it to comply
        torch.use_deterministic_algorithms(True)
    torch.autograd.set_detect_anomaly(cfg.debug)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    info = inspect_env(cfg.env, cfg.env_kwargs)
    threshold = cfg.eval_threshold if cfg.eval_threshold is not None else info.reward_threshold
    envs = make_vec_env(cfg.env, cfg.n_envs, cfg.seed, cfg.vectorization, cfg.env_kwargs)
    eval_envs = make_vec_env(
        cfg.env,
        min(cfg.eval_n_envs, cfg.eval_episodes),
        cfg.seed + EVAL_SEED_OFFSET,
        cfg.vectorization,
        cfg.env_kwargs,
        default_time_limit=cfg.eval_max_steps,
    )
    actor, critic, optimizer, agent_state = build_agent(cfg, info, device)
    obs_rms = (
        RunningMeanStd((info.obs_dim,), clip=cfg.ppo.clip_obs) if cfg.ppo.normalize_obs else None
    )
    reward_rms = RunningMeanStd((), clip=cfg.ppo.clip_reward) if cfg.ppo.normalize_reward else None
    run = Run(
        cfg,
        info,
        device,
        envs,
        eval_envs,
        actor,
        critic,
        optimizer,
        obs_rms,
        reward_rms,
        RunLogger(out_dir, cfg, threshold, str(device)),
        Path(out_dir),
        start_collection(envs, cfg.seed),
        np.random.default_rng(cfg.seed),
        next_eval=cfg.eval_every,
        _previous_torch_modes=previous_modes,
    )
    run.track(**agent_state, obs_rms=obs_rms, reward_rms=reward_rms)
    return run


def load_ppo_policy(
    cfg: Config, info: EnvInfo, objects: Mapping[str, Any]
) -> tuple[Actor, RunningMeanStd | None]:
    """PPO's and MB-PPO's actor and observation normaliser from a checkpoint's objects."""
    actor, _ = build_actor_critic(cfg, info)
    actor.load_state_dict(objects["actor"])
    obs_rms = None
    if "obs_rms" in objects:
        obs_rms = RunningMeanStd((info.obs_dim,), clip=cfg.ppo.clip_obs)
        obs_rms.load_state_dict(objects["obs_rms"])
    return actor, obs_rms
