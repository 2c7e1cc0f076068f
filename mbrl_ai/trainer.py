"""Model-Based PPO with Adaptive Imagination: the pseudocode's main loop, sections 2.1 to 2.8.

One call per section, in the pseudocode's order; every section lives in its own file:

    2.1 collect real experience                 collect.collect_rollout   (+ replay of real data)
        ... plus β·r_int                        curiosity.real_intrinsic_rewards, mix_intrinsic
    2.2 update world model, compute confidence  fit_model.update_world_model
    2.3 adaptive imagination                    imagine.plan_imagination, imagine_rollouts
        ... plus β·r_int                        curiosity.imagined_intrinsic_rewards, mix_intrinsic
    2.4 advantages and returns, per segment     gae.advantages_batch
    2.5 PPO update on real + imagined data      ppo_update.ppo_update
    2.6 curiosity update                        curiosity.update_curiosity
    2.7 adapt β                                 beta.adapt_beta
    2.8 logging                                 logger.mbppo_metrics, RunContext.log_iteration

``imagination.rounds`` > 1 repeats 2.3–2.5 on the same real batch (Dyna-style). Each iteration
ends in ``ckpt.end_iteration``, which writes a checkpoint every ``checkpoint_every`` real steps and
stops the run cleanly on SIGINT / SIGTERM (``runtime/``). PPO's networks, optimiser and
normalisers are the ``PPOAgent`` of ``agent.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mbrl_ai.agent import PPOAgent, build_ppo_agent
from mbrl_ai.beta import BetaState, adapt_beta
from mbrl_ai.collect import collect_rollout
from mbrl_ai.config import Config
from mbrl_ai.core.buffers import ReplayBuffer
from mbrl_ai.core.optim import Adam
from mbrl_ai.curiosity import (
    Curiosity,
    IntrinsicScaler,
    build_curiosity,
    curiosity_batch,
    imagined_intrinsic_rewards,
    intrinsic_stats,
    mix_intrinsic,
    real_intrinsic_rewards,
    update_curiosity,
)
from mbrl_ai.envs.termination import TerminationFn, termination_fn
from mbrl_ai.fit_model import (
    build_model_optimizer,
    build_real_replay,
    build_world_model,
    update_world_model,
)
from mbrl_ai.gae import advantages_batch, critic_error
from mbrl_ai.imagine import (
    STEVE_MODES,
    imagine_rollouts,
    plan_imagination,
    sample_start_states,
)
from mbrl_ai.logger import mbppo_metrics
from mbrl_ai.modules import Critic
from mbrl_ai.modules.trust import TrustGate
from mbrl_ai.modules.world_model import EnsembleWorldModel
from mbrl_ai.ppo_update import ppo_update
from mbrl_ai.runtime import Checkpointer, RunContext, RunResult, start_run


@dataclass
class MBPPOParts:
    """What MB-PPO adds to a PPO run: world model, real replay, curiosity, intrinsic head."""

    model: EnsembleWorldModel
    model_optimizer: Adam
    replay: ReplayBuffer
    curiosity: Curiosity
    curiosity_optimizer: Adam | None
    int_scaler: IntrinsicScaler
    int_critic: Critic | None  # a second value head for A_int (curiosity.intrinsic_head)
    done_fn: TerminationFn | None  # what ends a model rollout: None = the learned done head
    diagnostic_horizon: int  # depth of 2.2's open-loop error: the deepest rollout 2.3 imagines
    trust: TrustGate | None  # how far imagination is trusted (``trust.gate``); None: always

    def objects(self, cfg: Config) -> dict[str, Any]:
        """What a checkpoint keeps of them (``None``: not in this configuration)."""
        return {
            "world_model": self.model,
            "model_optimizer": self.model_optimizer,
            "replay": self.replay,
            # disagreement's module is the world model itself: nothing of its own to keep
            "curiosity": self.curiosity if self.curiosity.trainable_parameters() else None,
            "curiosity_optimizer": self.curiosity_optimizer,
            "int_scaler": self.int_scaler if cfg.curiosity.name != "none" else None,
            "int_critic": self.int_critic,
            "trust": self.trust,
        }


def build_parts(cfg: Config, run: RunContext, agent: PPOAgent) -> MBPPOParts:
    """Build MB-PPO's own modules for ``run``; an intrinsic head joins ``agent``'s optimiser."""
    info, device, wm, im = run.info, run.device, cfg.world_model, cfg.imagination
    model = build_world_model(wm, info, device)
    model_optimizer = build_model_optimizer(model, cfg.lr_world_model, wm)
    replay = build_real_replay(info, wm.replay_capacity, wm.holdout_fraction, cfg.seed)
    curiosity = build_curiosity(cfg.curiosity, info.obs_dim, info.action_space, model, cfg.seed)
    if isinstance(curiosity, torch.nn.Module):
        curiosity = curiosity.to(device)
    params = curiosity.trainable_parameters()
    curiosity_optimizer = Adam(params, lr=cfg.lr_curiosity) if params else None
    int_critic = None
    if cfg.curiosity.intrinsic_head and cfg.curiosity.name != "none":
        n = cfg.network
        int_critic = Critic(info.obs_dim, list(n.critic_hidden), n.activation, n.ortho_init)
        int_critic = int_critic.to(device)
        agent.optimizer.add_param_group({"params": list(int_critic.parameters())})
    trust = TrustGate(cfg.trust) if cfg.trust.gate else None
    if trust is not None:  # what a detected change may start over from
        trust.remember(world_model=model, actor=agent.actor, critic=agent.critic)
    return MBPPOParts(
        model,
        model_optimizer,
        replay,
        curiosity,
        curiosity_optimizer,
        IntrinsicScaler(cfg.n_envs, cfg.curiosity.int_gamma),
        int_critic,
        termination_fn(cfg.env, cfg.world_model.termination),
        cfg.planning_horizon if im.mode in ("breadth", "fixed") else im.max_horizon,
        trust,
    )


def resumed_loop_state(cfg: Config, saved: dict[str, Any]) -> tuple[BetaState, list[float]]:
    """β's state and the change test's error history: from the checkpoint, or fresh."""
    beta = BetaState(**saved["beta"]) if saved else BetaState(cfg.beta_init)
    return beta, list(saved.get("open_loop_history", [])) if saved else []


def restart_policy_on_change(
    cfg: Config, agent: PPOAgent, trust: TrustGate | None, policy_failed: bool
) -> bool:
    """With the trust gate: when a change was detected and the policy's returns fell with it
    (``trust.restart_policy``), give the actor and critic a fresh initialisation and their
    optimiser fresh moments. Returns whether it did."""
    if trust is None or not policy_failed or not cfg.trust.restart_policy:
        return False
    trust.start_over("actor", agent.actor)
    trust.start_over("critic", agent.critic)
    agent.optimizer.state.clear()
    return True


def train_mbppo(cfg: Config, out_dir: Path) -> RunResult:
    """Train MB-PPO as configured (resuming from ``out_dir``'s newest checkpoint if it has one);
    write metrics, evaluations and checkpoints to ``out_dir``."""
    run = start_run(cfg, out_dir)
    agent = build_ppo_agent(cfg, run.info, run.device)
    p = build_parts(cfg, run, agent)
    ckpt = Checkpointer(run)
    ckpt.track(**agent.objects(), **p.objects(cfg))
    run.evaluate_with(agent.actor, agent.obs_rms)
    actor, critic, device, im_cfg = agent.actor, agent.critic, run.device, cfg.imagination
    two_heads, steve = p.int_critic is not None, im_cfg.mode in STEVE_MODES

    with run, ckpt:
        beta, errors = resumed_loop_state(cfg, ckpt.begin())
        while run.env_steps < cfg.total_timesteps:
            agent.anneal_lr(run.env_steps, cfg.total_timesteps)
            t0 = time.perf_counter()
            # 2.1 collect real experience; every real transition also goes to the replay
            rollout, run.collect = collect_rollout(
                run.envs, actor, critic, run.collect, cfg.n_real_steps // cfg.n_envs, cfg.gamma,
                agent.obs_rms, agent.reward_rms, device,
            )  # fmt: skip
            p.replay.add(rollout.transitions())
            run.env_steps += cfg.n_real_steps
            # ... plus β·r_int (curiosity off: β = 0 or none)
            curious = beta.beta > 0.0
            if curious:
                int_real = real_intrinsic_rewards(p.curiosity, p.int_scaler, rollout, device)
                rollout = mix_intrinsic(rollout, int_real, beta.beta, two_heads)
            t1 = time.perf_counter()

            # 2.2 update world model, compute confidence (held-out, or open-loop as configured)
            model = update_world_model(
                p.model, p.model_optimizer, p.replay, rollout, errors, cfg.world_model,
                cfg.n_real_steps, p.diagnostic_horizon, run.iteration == 0, run.rng, device, p.trust,
                run.collect.finished_returns,
            )  # fmt: skip
            confidence, errors = model.confidence, model.errors
            restarted = restart_policy_on_change(cfg, agent, p.trust, model.policy_failed)
            t2 = time.perf_counter()

            weight = confidence if im_cfg.imagined_weight == "confidence" else 1.0
            value_var = critic_error(rollout, cfg.gamma, cfg.gae_lambda) if steve else None
            imagine_s, n_imagined = 0.0, 0
            for _ in range(im_cfg.rounds if model.gate > 0 else 1):  # shut: one real-data update
                # 2.3 adaptive imagination: how many rollouts (and how deep) from confidence
                t_im = time.perf_counter()
                n_rollouts, horizon = plan_imagination(
                    confidence, cfg.planning_horizon, cfg.confidence_thresh,
                    cfg.min_planning_rollouts, cfg.max_planning_rollouts, im_cfg.mode,
                )  # fmt: skip
                n_rollouts = round(model.gate * n_rollouts)  # 0 after an undone model update
                starts = sample_start_states(
                    p.replay.recent_obs(im_cfg.start_window), n_rollouts, run.rng,
                    rollout.raw_obs.reshape(-1, run.info.obs_dim), im_cfg.recent_share,
                )  # fmt: skip
                imagined = imagine_rollouts(
                    actor, critic, p.model, torch.as_tensor(starts, device=device), horizon,
                    im_cfg, agent.obs_rms, agent.reward_rms, done_fn=p.done_fn,
                    done_threshold=cfg.world_model.done_threshold,
                    value_var=value_var or 0.0, gamma=cfg.gamma,
                )  # fmt: skip
                # ... plus β·r_int on the predicted next states
                if curious:
                    int_imagined = imagined_intrinsic_rewards(p.curiosity, p.int_scaler, imagined)
                    imagined = mix_intrinsic(imagined, int_imagined, beta.beta, two_heads)
                imagine_s += time.perf_counter() - t_im
                n_imagined += imagined.n_transitions
                # 2.4 advantages per segment: the real rollout's episodes, each imagined rollout
                batch = advantages_batch(
                    rollout, imagined, weight, cfg.gamma, cfg.gae_lambda, beta.beta,
                    p.int_critic, cfg.curiosity.int_gamma, agent.obs_rms, device,
                )  # fmt: skip
                # 2.5 PPO-style policy / value update on real + imagined data
                update = ppo_update(
                    actor, critic, agent.optimizer, batch.to(device), cfg, p.int_critic
                )
                run.check_update(update)
            t3 = time.perf_counter()

            # 2.6 curiosity module update (if β > 0), on real and optionally imagined transitions
            curiosity_metrics = update_curiosity(
                p.curiosity, p.curiosity_optimizer,
                *curiosity_batch(rollout, imagined, cfg.curiosity.train_on_imagined, device),
                cfg.curiosity.epochs, cfg.curiosity.batch_size,
            ) if curious else {"curiosity_loss": 0.0}  # fmt: skip
            # 2.7 adapt β to the trend of real extrinsic returns
            beta = adapt_beta(beta, run.collect.finished_returns, cfg.beta_adapt_rate, cfg.beta)
            run.iteration += 1
            run.maybe_evaluate()

            # 2.8 logging: the pseudocode's keys, then diagnostics and timing
            seconds = {"collect_s": t1 - t0, "model_s": t2 - t1, "imagine_s": imagine_s,
                       "update_s": t3 - t2 - imagine_s}  # fmt: skip
            extra = {
                **({"value_var": value_var} if value_var is not None else {}),
                **curiosity_metrics,
                **intrinsic_stats("int_reward_real", rollout.int_rewards),
                **intrinsic_stats("int_reward_imagined", imagined.int_rewards, imagined.valid),
                "lr": agent.current_lr,
                **({"trust/policy_restarted": float(restarted)} if p.trust else {}),
            }
            run.log_iteration(mbppo_metrics(
                confidence, n_rollouts, beta.beta, beta.slope, update, model.metrics(),
                float(rollout.ext_rewards.mean()), cfg.n_real_steps, imagined.sizes(n_imagined),
                extra, seconds,
            ))  # fmt: skip
            ckpt.end_iteration(beta=beta, open_loop_history=errors)
        ckpt.finish(beta=beta, open_loop_history=errors)
    return run.result()
