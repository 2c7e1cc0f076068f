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


@dataclass
class _Buffers:
    """What :func:`collect_rollout` records per step, ``[T, N, ...]`` numpy."""

    obs: np.ndarray  # policy inputs (normalised)
    actions: np.ndarray
    log_probs: np.ndarray
    values: np.ndarray
    rewards: np.ndarray  # what PPO learns from (scaled with reward_rms)
    ext_rewards: np.ndarray  # the env's
    terminated: np.ndarray
    truncated: np.ndarray
    raw_obs: np.ndarray
    raw_next_obs: np.ndarray

    @classmethod
    def empty(cls, steps: int, n: int, obs_dim: int, act_shape: tuple[int, ...]) -> _Buffers:
        discrete = not act_shape
        return cls(
            obs=np.zeros((steps, n, obs_dim), dtype=np.float32),
            actions=np.zeros((steps, n, *act_shape), dtype=np.int64 if discrete else np.float32),
            log_probs=np.zeros((steps, n), dtype=np.float32),
            values=np.zeros((steps, n), dtype=np.float32),
            rewards=np.zeros((steps, n), dtype=np.float32),
            ext_rewards=np.zeros((steps, n), dtype=np.float32),
            terminated=np.zeros((steps, n), dtype=bool),
            truncated=np.zeros((steps, n), dtype=bool),
            raw_obs=np.zeros((steps, n, obs_dim), dtype=np.float32),
            raw_next_obs=np.zeros((steps, n, obs_dim), dtype=np.float32),
        )

    def to_rollout(self, next_values: np.ndarray) -> Rollout:
        t = torch.from_numpy
        return Rollout(
            obs=t(self.obs), actions=t(self.actions), log_probs=t(self.log_probs),
            values=t(self.values), next_values=t(next_values), rewards=t(self.rewards),
            ext_rewards=t(self.ext_rewards), terminated=t(self.terminated),
            truncated=t(self.truncated), raw_obs=self.raw_obs, raw_next_obs=self.raw_next_obs,
        )  # fmt: skip


def _end_step(
    s: CollectState,
    reward: np.ndarray,
    done: np.ndarray,
    gamma: float,
    reward_rms: RunningMeanStd | None,
) -> np.ndarray:
    """Book-keep one step of every env: the running discounted return and its scaling of the
    reward (``reward_rms``), the episode counters, the episodes that ended. Returns the reward
    PPO learns from."""
    learned = reward
    if reward_rms is not None:
        s.discounted_returns = s.discounted_returns * gamma + reward
        reward_rms.update(torch.from_numpy(s.discounted_returns))
        learned = reward_rms.scale(torch.from_numpy(reward.astype(np.float64))).numpy()
        s.discounted_returns[done] = 0.0
    s.episode_returns += reward
    s.episode_lengths += 1
    if done.any():
        for i in np.flatnonzero(done):
            s.finished_returns.append(float(s.episode_returns[i]))
            s.finished_lengths.append(int(s.episode_lengths[i]))
            s.episode_returns[i], s.episode_lengths[i] = 0.0, 0
    return learned


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
    discrete = actor.discrete
    low, high = None, None
    if not discrete:
        space = envs.single_action_space
        assert isinstance(space, gym.spaces.Box)  # a continuous actor acts on a Box
        low, high = space.low, space.high
    act_shape = () if discrete else (actor.log_std.numel(),)
    b = _Buffers.empty(n_steps, n, state.obs.shape[1], act_shape)
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

            b.obs[t], b.actions[t] = obs_in.cpu().numpy(), action_np
            b.log_probs[t], b.values[t] = logp.cpu().numpy(), value.cpu().numpy()
            b.raw_obs[t], b.raw_next_obs[t] = obs, real_next
            b.ext_rewards[t], b.terminated[t], b.truncated[t] = reward, term, trunc
            b.rewards[t] = _end_step(s, reward, done, gamma, reward_rms)
            # truncated but not terminated: the episode could have gone on, so bootstrap from V(s_T)
            boot = trunc & ~term
            if boot.any():
                trunc_obs.append((t, np.flatnonzero(boot), real_next[boot]))
            obs = next_obs

        # bootstrap values: V(s_{t+1}) within an episode, V(obs after the last step) at the end
        next_values = np.empty_like(b.values)
        next_values[:-1] = b.values[1:]
        next_values[-1] = critic(policy_input(obs)).cpu().numpy()
        next_values[b.terminated | b.truncated] = 0.0
        for t, idx, final in trunc_obs:
            next_values[t, idx] = critic(policy_input(final)).cpu().numpy()
    s.obs = obs
    return b.to_rollout(next_values), s
