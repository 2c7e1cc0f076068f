"""What every PPO-based loop builds the same way: actor, critic, their optimiser and normalisers,
the train and evaluation envs, the logger; plus evaluation scheduling and the final checkpoint.

``algos/ppo.py`` and ``trainer.py`` both start from :func:`start_run`, so the two loops differ
only in their sections.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from gymnasium.vector import VectorEnv

from mbrl_ai.checkpoint import load_checkpoint, save_checkpoint
from mbrl_ai.config import Config, config_dict, to_config
from mbrl_ai.envs import EnvInfo, inspect_env, make_vec_env
from mbrl_ai.evaluate import evaluate_policy
from mbrl_ai.logger import RunLogger
from mbrl_ai.modules import Actor, Critic, RunningMeanStd
from mbrl_ai.utils import resolve_device, seed_everything


@dataclass
class RunResult:
    """What a finished run hands back to its caller (tests, benchmark scripts)."""

    out_dir: Path
    env_steps: int
    train_seconds: float
    evals: list[dict]


@dataclass
class Run:
    """The objects a training loop works with."""

    cfg: Config
    info: EnvInfo
    device: torch.device
    envs: VectorEnv
    eval_envs: VectorEnv
    actor: Actor
    critic: Critic
    optimizer: torch.optim.Optimizer
    obs_rms: RunningMeanStd | None
    reward_rms: RunningMeanStd | None
    logger: RunLogger
    out_dir: Path
    evals: list[dict] = field(default_factory=list)
    next_eval: int = 0

    def set_lr(self, env_steps: int) -> None:
        """Linear learning-rate annealing to 0 over ``total_timesteps`` (when enabled)."""
        if self.cfg.ppo.anneal_lr:
            for group in self.optimizer.param_groups:
                group["lr"] = self.cfg.lr_actor_critic * (
                    1.0 - env_steps / self.cfg.total_timesteps
                )

    def maybe_evaluate(self, env_steps: int) -> None:
        """Evaluate after the update that crosses a multiple of ``eval_every``, and at the end."""
        if env_steps < self.next_eval and env_steps < self.cfg.total_timesteps:
            return
        t = time.perf_counter()
        returns = evaluate_policy(
            self.actor,
            self.eval_envs,
            self.cfg.eval_episodes,
            self.cfg.seed + 10_000,
            self.obs_rms,
            self.device,
        )
        self.evals.append(self.logger.log_eval(env_steps, returns, time.perf_counter() - t))
        self.next_eval = (env_steps // self.cfg.eval_every + 1) * self.cfg.eval_every

    def finish(self, env_steps: int, iteration: int, extra: dict[str, Any] | None = None) -> None:
        """Write the final checkpoint (atomically)."""
        save_checkpoint(
            self.out_dir / "checkpoint.pt",
            {
                "actor": self.actor.state_dict(),
                "critic": self.critic.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "obs_rms": self.obs_rms.state_dict() if self.obs_rms is not None else None,
                "reward_rms": self.reward_rms.state_dict() if self.reward_rms is not None else None,
                "env_steps": env_steps,
                "iteration": iteration,
                "config": config_dict(self.cfg),
                **(extra or {}),
            },
        )

    def close(self, env_steps: int) -> RunResult:
        self.envs.close()
        self.eval_envs.close()
        seconds = self.logger.train_seconds
        self.logger.close()
        return RunResult(self.out_dir, env_steps, seconds, self.evals)


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


def start_run(cfg: Config, out_dir: Path) -> Run:
    """Seed, build envs, networks, optimiser, normalisers and logger for ``cfg``."""
    torch.set_num_threads(cfg.torch_threads)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    info = inspect_env(cfg.env)
    threshold = cfg.eval_threshold if cfg.eval_threshold is not None else info.reward_threshold
    envs = make_vec_env(cfg.env, cfg.n_envs, cfg.seed, cfg.vectorization)
    eval_envs = make_vec_env(
        cfg.env, min(cfg.eval_n_envs, cfg.eval_episodes), cfg.seed + 10_000, cfg.vectorization
    )
    actor, critic = (m.to(device) for m in build_actor_critic(cfg, info))
    optimizer = torch.optim.Adam(
        [*actor.parameters(), *critic.parameters()],
        lr=cfg.lr_actor_critic,
        eps=cfg.ppo.adam_eps,
        fused=True,  # one kernel for all parameters: the fastest Adam step on CPU and GPU
    )
    obs_rms = (
        RunningMeanStd((info.obs_dim,), clip=cfg.ppo.clip_obs) if cfg.ppo.normalize_obs else None
    )
    reward_rms = RunningMeanStd(()) if cfg.ppo.normalize_reward else None
    logger = RunLogger(out_dir, cfg, threshold, str(device))
    return Run(
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
        logger,
        Path(out_dir),
        next_eval=cfg.eval_every,
    )


def load_policy(path: Path) -> tuple[Actor, RunningMeanStd | None, Config]:
    """The actor (and observation normaliser) of a checkpoint, with the run's config."""
    from omegaconf import OmegaConf

    ckpt = load_checkpoint(path)
    cfg = to_config(OmegaConf.create(ckpt["config"]))
    info = inspect_env(cfg.env)
    actor, _ = build_actor_critic(cfg, info)
    actor.load_state_dict(ckpt["actor"])
    obs_rms = None
    if ckpt["obs_rms"] is not None:
        obs_rms = RunningMeanStd((info.obs_dim,), clip=cfg.ppo.clip_obs)
        obs_rms.load_state_dict(ckpt["obs_rms"])
    return actor, obs_rms, cfg
