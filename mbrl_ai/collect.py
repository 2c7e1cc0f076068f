"""2.1 Collect real experience (on-policy).

``collect_rollout`` steps the vector env ``n_steps`` times with the current policy and returns a
:class:`Rollout` of shape ``[T, N, ...]`` plus the state that carries over to the next call
(current observation, running episode returns). Per step it stores the value V(s) and, for the
successor, the value GAE bootstraps from: V(s') while the episode goes on, V(final_obs) when the
time limit truncated it, and 0 when it terminated.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv

from mbrl_ai.core.buffers import Transitions
from mbrl_ai.core.errors import NonFiniteError
from mbrl_ai.envs import final_observations
from mbrl_ai.modules import Actor, Critic, RunningMeanStd
from mbrl_ai.modules.mlp import fast_forward


@dataclass(frozen=True)
class Rollout:
    """Real transitions, time-major. Shapes in the comments; ``T`` steps of ``N`` envs."""

    obs: torch.Tensor  # [T, N, obs_dim] policy inputs (normalised when obs normalisation is on)
    actions: torch.Tensor  # [T, N] long (Discrete) or [T, N, act_dim] (Box, unclipped sample)
    log_probs: torch.Tensor  # [T, N] log πθ(a|s) at collection time
    values: torch.Tensor  # [T, N] Vθ(s) at collection time
    next_values: torch.Tensor  # [T, N] Vθ(s') to bootstrap from (0 where terminated)
    rewards: torch.Tensor  # [T, N] the reward PPO optimises (scaled when reward scaling is on)
    ext_rewards: torch.Tensor  # [T, N] the environment's reward, untouched
    terminated: torch.Tensor  # [T, N] bool: the MDP ended (no bootstrap)
    truncated: torch.Tensor  # [T, N] bool: a time limit cut the episode (bootstrap)
    raw_obs: np.ndarray  # [T, N, obs_dim] env observations (for model fitting)
    raw_next_obs: np.ndarray  # [T, N, obs_dim] true successors: final_obs where an episode ended
    int_rewards: torch.Tensor | None = None  # [T, N] scaled intrinsic rewards (curiosity on)

    @property
    def ends(self) -> torch.Tensor:
        """[T, N] bool: an episode ended at this step (terminated or truncated)."""
        return self.terminated | self.truncated

    def transitions(self) -> Transitions:
        """The rollout as flat real transitions ``[T·N]`` for the world model's replay."""
        obs_dim = self.raw_obs.shape[-1]
        return Transitions(
            obs=self.raw_obs.reshape(-1, obs_dim),
            actions=self.actions.numpy().reshape(-1, *self.actions.shape[2:]),
            rewards=self.ext_rewards.numpy().reshape(-1),
            next_obs=self.raw_next_obs.reshape(-1, obs_dim),
            terminated=self.terminated.numpy().reshape(-1),
        )


@dataclass
class CollectState:
    """What carries from one collection call to the next."""

    obs: np.ndarray  # [N, obs_dim] current raw observation
    episode_returns: np.ndarray  # [N] extrinsic return of the running episodes
    episode_lengths: np.ndarray  # [N]
    discounted_returns: np.ndarray  # [N] running discounted return, for reward scaling
    finished_returns: list[float] = field(default_factory=list)
    finished_lengths: list[int] = field(default_factory=list)


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_env_output(
    envs: VectorEnv,
    reward: np.ndarray,
    obs: np.ndarray,
    reset_obs: np.ndarray | None = None,
) -> None:
    """Refuse a NaN or inf from the environment before it reaches any buffer or network."""
    for what, x in (
        ("reward", reward),
        ("observation", obs),
        ("reset observation", reset_obs),
    ):
        if x is None:
            continue
        # one pass when all is well (the comparison is false for NaN too)
        if np.abs(x).max(initial=0.0) <= FLOAT32_MAX:
            continue
        finite = np.isfinite(x)
        # the networks and buffers are float32: a value beyond its range would become inf there
        fits = finite & (np.abs(np.where(finite, x, 0.0)) <= FLOAT32_MAX)
        if not fits.all():
            slot = int(np.flatnonzero(~fits.reshape(len(x), -1).all(-1))[0])
            env_id = getattr(envs.spec, "id", None) or "the environment"
            kind = "non-finite" if not finite.all() else "float32-overflowing (|x| > 3.4e38)"
            raise NonFiniteError(
                f"{env_id} returned a {kind} {what} in vector slot {slot}: {x[slot]}"
            )


def start_collection(envs: VectorEnv, seed: int) -> CollectState:
    """Reset the training envs with ``seed`` and return the initial collection state."""
    obs, _ = envs.reset(seed=seed)
    n = envs.num_envs
    return CollectState(
        obs=obs.astype(np.float32).reshape(n, -1),
        episode_returns=np.zeros(n),
        episode_lengths=np.zeros(n, dtype=np.int64),
        discounted_returns=np.zeros(n),
    )


def collect_rollout(
    envs: VectorEnv,
    actor: Actor,
    critic: Critic,
    state: CollectState,
    n_steps: int,
    gamma: float,
    obs_rms: RunningMeanStd | None = None,
    reward_rms: RunningMeanStd | None = None,
    device: torch.device | None = None,
) -> tuple[Rollout, CollectState]:
    """Run the policy for ``n_steps`` steps of every env.

    ``obs_rms`` (optional) is updated with every observation and normalises the policy inputs;
    ``reward_rms`` (optional) tracks the discounted return and scales rewards by its std.
    The returned state lists the episodes finished during this call.
    """
    device = device or torch.device("cpu")
    n = envs.num_envs
    obs_dim = state.obs.shape[1]
    discrete = actor.discrete
    low, high = None, None
    if not discrete:
        space = envs.single_action_space
        assert isinstance(space, gym.spaces.Box)  # a continuous actor acts on a Box
        low, high = space.low, space.high

    act_shape = () if discrete else (actor.log_std.numel(),)
    obs_buf = np.zeros((n_steps, n, obs_dim), dtype=np.float32)
    act_buf = np.zeros((n_steps, n, *act_shape), dtype=np.int64 if discrete else np.float32)
    logp_buf = np.zeros((n_steps, n), dtype=np.float32)
    value_buf = np.zeros((n_steps, n), dtype=np.float32)
    rewards = np.zeros((n_steps, n), dtype=np.float32)
    ext_rewards = np.zeros((n_steps, n), dtype=np.float32)
    terminated = np.zeros((n_steps, n), dtype=bool)
    truncated = np.zeros((n_steps, n), dtype=bool)
    raw_obs = np.zeros((n_steps, n, obs_dim), dtype=np.float32)
    raw_next = np.zeros((n_steps, n, obs_dim), dtype=np.float32)
    # steps at which an episode was truncated: their bootstrap value is V(final_obs), filled below
    trunc_obs: list[tuple[int, np.ndarray, np.ndarray]] = []

    def policy_input(x: np.ndarray) -> torch.Tensor:
        x_t = torch.from_numpy(x).to(device)
        if obs_rms is not None:
            x_t = obs_rms.normalize(x_t).float()
        return x_t

    s = replace(state, finished_returns=[], finished_lengths=[])
    obs = s.obs
    # the networks' forwards without nn.Module call overhead: same kernels, same numbers
    actor_net, critic_net = fast_forward(actor.net), fast_forward(critic.net)
    # inference_mode is safe here: every tensor made inside is copied into numpy buffers
    with torch.inference_mode():
        for t in range(n_steps):
            if obs_rms is not None:
                obs_rms.update(torch.from_numpy(obs))
            obs_in = policy_input(obs)
            action, logp = actor.sample_from(actor_net(obs_in))
            value = critic_net(obs_in).squeeze(-1)
            action_np = action.cpu().numpy()
            env_action = action_np if discrete else np.clip(action_np, low, high)
            next_obs, reward, term, trunc, infos = envs.step(env_action)
            next_obs = next_obs.astype(np.float32).reshape(n, -1)
            done = term | trunc
            real_next = final_observations(next_obs, infos, done)
            check_env_output(envs, reward, real_next, next_obs if done.any() else None)

            obs_buf[t] = obs_in.cpu().numpy()
            act_buf[t] = action_np
            logp_buf[t] = logp.cpu().numpy()
            value_buf[t] = value.cpu().numpy()
            raw_obs[t], raw_next[t] = obs, real_next
            ext_rewards[t], terminated[t], truncated[t] = reward, term, trunc
            rewards[t] = reward
            if reward_rms is not None:
                s.discounted_returns = s.discounted_returns * gamma + reward
                reward_rms.update(torch.from_numpy(s.discounted_returns))
                rewards[t] = reward_rms.scale(torch.from_numpy(reward.astype(np.float64))).numpy()
                s.discounted_returns[done] = 0.0

            # truncated but not terminated: the episode could have gone on, so bootstrap from V(s_T)
            boot = trunc & ~term
            if boot.any():
                trunc_obs.append((t, np.flatnonzero(boot), real_next[boot]))

            s.episode_returns += reward
            s.episode_lengths += 1
            if done.any():
                for i in np.flatnonzero(done):
                    s.finished_returns.append(float(s.episode_returns[i]))
                    s.finished_lengths.append(int(s.episode_lengths[i]))
                    s.episode_returns[i], s.episode_lengths[i] = 0.0, 0
            obs = next_obs

        # bootstrap values: V(s_{t+1}) within an episode, V(obs after the last step) at the end
        next_value_buf = np.empty_like(value_buf)
        next_value_buf[:-1] = value_buf[1:]
        next_value_buf[-1] = critic(policy_input(obs)).cpu().numpy()
        next_value_buf[terminated | truncated] = 0.0
        for t, idx, final in trunc_obs:
            next_value_buf[t, idx] = critic(policy_input(final)).cpu().numpy()

    s.obs = obs
    rollout = Rollout(
        obs=torch.from_numpy(obs_buf),
        actions=torch.from_numpy(act_buf),
        log_probs=torch.from_numpy(logp_buf),
        values=torch.from_numpy(value_buf),
        next_values=torch.from_numpy(next_value_buf),
        rewards=torch.from_numpy(rewards),
        ext_rewards=torch.from_numpy(ext_rewards),
        terminated=torch.from_numpy(terminated),
        truncated=torch.from_numpy(truncated),
        raw_obs=raw_obs,
        raw_next_obs=raw_next,
    )
    return rollout, s
