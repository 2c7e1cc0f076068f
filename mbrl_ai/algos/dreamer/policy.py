"""The Dreamer agent acting in real envs: a recurrent policy that carries each env's latent state
and last action from step to step (``start`` before the first step, ``reset_state`` where
episodes end). The run's evaluations and ``python -m mbrl_ai.evaluate`` use it like any policy;
training acts through ``act`` / ``commit``.

With a context of K steps (``dreamer.act_context``) the policy keeps each env's last K
observations and actions instead, and at every step filters them afresh from a blank state: the
actor then sees a posterior state filtered over at most K steps, as the replayed sequences it
learned from are, rather than one filtered over the whole episode."""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch.nn import functional as F

from mbrl_ai.algos.dreamer.behavior import DreamerAgent
from mbrl_ai.algos.dreamer.world_model import Latent
from mbrl_ai.envs import EnvInfo


class DreamerPolicy:
    """Posterior latent states of ``n`` envs and the actor on top. Latent samples (and, when
    exploring, actions) come from the policy's own generator, so acting draws nothing from the
    global generators; :meth:`start` reseeds it (every evaluation sees the same draws)."""

    def __init__(self, agent: DreamerAgent, info: EnvInfo, seed: int, context: int = 0) -> None:
        self.agent, self.seed, self.context = agent, seed, context
        space = info.action_space
        self.discrete = isinstance(space, gym.spaces.Discrete)
        self.action_dim = info.action_dim
        if isinstance(space, gym.spaces.Box):
            low, high = (
                np.nan_to_num(space.low, posinf=1.0, neginf=-1.0),
                np.nan_to_num(space.high, posinf=1.0, neginf=-1.0),
            )
            bounded = np.isfinite(space.low) & np.isfinite(space.high)
            self.center = torch.as_tensor(
                np.where(bounded, (low + high) / 2, 0.0), dtype=torch.float32
            )
            self.scale = torch.as_tensor(
                np.where(bounded, (high - low) / 2, 1.0), dtype=torch.float32
            )
        self.device = next(agent.parameters()).device
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.state: Latent | None = None
        self.prev_action = torch.zeros(0, self.action_dim, device=self.device)
        self.is_first = torch.ones(0, dtype=torch.bool, device=self.device)
        # with a context: each env's last ``context`` observations and the actions that led to
        # them (oldest first), and how many of them belong to its current episode
        self.window_obs = torch.zeros(context, 0, info.obs_dim, device=self.device)
        self.window_actions = torch.zeros(context, 0, self.action_dim, device=self.device)
        self.window_len = torch.zeros(0, dtype=torch.long, device=self.device)

    def fork(self) -> DreamerPolicy:
        """A policy for one more env: the same agent, its own latent state and generator."""
        lane = copy.copy(self)
        lane.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        lane.state = None
        return lane

    def start(self, n: int) -> None:
        """Fresh states for ``n`` envs about to be reset; reseed the generator."""
        self.generator.manual_seed(self.seed)
        self.state = self.agent.wm.rssm.initial(n, self.device)
        self.prev_action = torch.zeros(n, self.action_dim, device=self.device)
        self.is_first = torch.ones(n, dtype=torch.bool, device=self.device)
        self.window_obs = torch.zeros(
            self.context, n, self.window_obs.shape[-1], device=self.device
        )
        self.window_actions = torch.zeros(self.context, n, self.action_dim, device=self.device)
        self.window_len = torch.zeros(n, dtype=torch.long, device=self.device)

    def reset_state(self, done: np.ndarray) -> None:
        """The envs where ``done`` start a new episode at their next observation."""
        if self.state is None or len(done) != len(self.is_first):
            self.start(len(done))
        self.is_first |= torch.as_tensor(done, device=self.device)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        """Observe ``obs [n, obs_dim]`` (the posterior state) and choose normalised actions
        (one-hot, or in [-1, 1]): sampled when exploring, else the actor's mode."""
        if self.state is None:
            self.start(len(obs))
        assert self.state is not None
        wm = self.agent.wm
        if self.context > 0:
            self.state = self._filter_window(obs.float())
        else:
            self.state, _ = wm.rssm.obs_step(
                self.state, self.prev_action, wm.embed(obs.float()), self.is_first, self.generator
            )
        dist = self.agent.acting_actor()(self.state.feat())
        return dist.sample(self.generator) if explore else dist.mode()

    def _filter_window(self, obs: torch.Tensor) -> Latent:
        """Append ``obs`` to each env's window (which restarts where an episode begins) and
        filter the window from a blank state; its oldest step counts as a first step, as the
        first step of a replayed sequence does."""
        self.window_obs = torch.cat([self.window_obs[1:], obs.unsqueeze(0)])
        self.window_actions = torch.cat([self.window_actions[1:], self.prev_action.unsqueeze(0)])
        self.window_len = torch.where(
            self.is_first, 1, torch.clamp(self.window_len + 1, max=self.context)
        )
        k = self.context
        first = torch.arange(k, device=self.device).unsqueeze(1) == (k - self.window_len)
        wm, begin = self.agent.wm, k - int(self.window_len.max())
        embed = wm.embed(self.window_obs[begin:])
        state = wm.rssm.initial(len(obs), self.device)
        for j in range(begin, k):
            state, _ = wm.rssm.obs_step(
                state, self.window_actions[j], embed[j - begin], first[j], self.generator
            )
        return state

    def commit(self, action: torch.Tensor) -> None:
        """The actions taken (the RSSM's next input)."""
        self.prev_action = action.to(self.device, torch.float32)
        self.is_first = torch.zeros_like(self.is_first)

    def random_actions(self, rng: np.random.Generator) -> torch.Tensor:
        n = len(self.is_first)
        if self.discrete:
            index = torch.as_tensor(rng.integers(0, self.action_dim, n), device=self.device)
            return F.one_hot(index, self.action_dim).float()
        a = rng.uniform(-1.0, 1.0, (n, self.action_dim)).astype(np.float32)
        return torch.as_tensor(a, device=self.device)

    def env_actions(self, action: torch.Tensor) -> torch.Tensor:
        """Normalised actions in env units (the index of a one-hot, or rescaled to the bounds)."""
        if self.discrete:
            return action.argmax(-1)
        return self.center.to(action.device) + self.scale.to(action.device) * action

    def normalised_actions(self, env_action: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`env_actions`: one-hots, or rescaled to [-1, 1]."""
        if self.discrete:
            return F.one_hot(env_action.long().reshape(-1), self.action_dim).float()
        x = env_action.float().reshape(-1, self.action_dim)
        return (x - self.center.to(x.device)) / self.scale.to(x.device)

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        """The evaluation action (the policy's mode given its latent state), in env units."""
        action = self.act(obs, explore=False)
        self.commit(action)
        return self.env_actions(action)

    # -- checkpointing (the acting policy's state is part of the collection state) --------------

    def state_dict(self) -> dict[str, Any]:
        assert self.state is not None
        return {
            "h": self.state.h,
            "z": self.state.z,
            "prev_action": self.prev_action,
            "is_first": self.is_first,
            "generator": self.generator.get_state(),
            "window_obs": self.window_obs,
            "window_actions": self.window_actions,
            "window_len": self.window_len,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = Latent(state["h"].to(self.device), state["z"].to(self.device))
        self.prev_action = state["prev_action"].to(self.device)
        self.is_first = state["is_first"].to(self.device)
        self.generator.set_state(state["generator"].to(torch.uint8).cpu())
        self.window_obs = state["window_obs"].to(self.device)  # empty without a context, but
        self.window_actions = state["window_actions"].to(self.device)  # sized for the envs
        self.window_len = state["window_len"].to(self.device)
