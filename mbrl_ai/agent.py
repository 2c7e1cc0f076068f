"""PPO's agent, shared by the PPO baseline (``algos/ppo.py``) and MB-PPO (``trainer.py``): the
actor πθ, the critic Vθ, their one Adam, the optional observation and reward normalisers, and
the linear learning-rate annealing. The run around it (envs, logs, checkpoints) is
``mbrl_ai.runtime``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from mbrl_ai.config import Config, need
from mbrl_ai.core.optim import Adam
from mbrl_ai.envs import EnvInfo
from mbrl_ai.modules import Actor, Critic, RunningMeanStd


@dataclass
class PPOAgent:
    """What PPO learns and keeps: the networks, their optimiser and the normalisers."""

    actor: Actor
    critic: Critic
    optimizer: Adam
    obs_rms: RunningMeanStd | None  # ppo.normalize_obs: normalises policy and value inputs
    reward_rms: RunningMeanStd | None  # ppo.normalize_reward: scales rewards by the return's std
    lr: float  # the initial learning rate
    anneal: bool

    def anneal_lr(self, env_steps: int, total_timesteps: int) -> None:
        """Linear learning-rate annealing to 0 over ``total_timesteps`` (when enabled)."""
        if self.anneal:
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr * (1.0 - env_steps / total_timesteps)

    @property
    def current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def objects(self) -> dict[str, Any]:
        """What a checkpoint keeps of the agent (``None``: a normaliser that is off)."""
        return {
            "actor": self.actor,
            "critic": self.critic,
            "optimizer": self.optimizer,
            "obs_rms": self.obs_rms,
            "reward_rms": self.reward_rms,
        }


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


def build_ppo_agent(cfg: Config, info: EnvInfo, device: torch.device) -> PPOAgent:
    """PPO's actor, critic, their one Adam and the normalisers ``ppo.*`` asks for."""
    actor, critic = build_actor_critic(cfg, info)
    actor, critic = actor.to(device), critic.to(device)
    optimizer = Adam(
        [*actor.parameters(), *critic.parameters()],
        lr=cfg.lr_actor_critic,
        eps=cfg.ppo.adam_eps,
        fused=True,  # one kernel for all parameters: the fastest Adam step on CPU and GPU
    )
    p = cfg.ppo
    obs_rms = RunningMeanStd((info.obs_dim,), clip=p.clip_obs) if p.normalize_obs else None
    if obs_rms is not None and device.type != "mps":  # MPS has no float64: statistics stay on CPU
        obs_rms = obs_rms.to(device)
    # the reward scaler only ever sees the env's rewards (numpy, on the CPU): it stays there
    reward_rms = RunningMeanStd((), clip=p.clip_reward) if p.normalize_reward else None
    return PPOAgent(actor, critic, optimizer, obs_rms, reward_rms, cfg.lr_actor_critic, p.anneal_lr)


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


def check_ppo_batch(cfg: Config, imagined: int = 0) -> None:
    """The batch rules of the PPO family (``algo=ppo``, ``algo=mbppo``): every env takes the same
    number of real steps per iteration, and one minibatch fits in a batch of ``n_real_steps`` real
    samples plus ``imagined`` imagined ones at most."""
    need(
        cfg.n_real_steps % cfg.n_envs == 0,
        "n_real_steps",
        cfg.n_real_steps,
        f"must be a multiple of n_envs ({cfg.n_envs})",
    )
    need(
        cfg.batch_size <= cfg.n_real_steps + imagined,
        "batch_size",
        cfg.batch_size,
        f"must be <= n_real_steps ({cfg.n_real_steps})"
        + (f" + max_planning_rollouts x horizon ({imagined})" if imagined else ""),
    )
