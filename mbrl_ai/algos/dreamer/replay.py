"""The sequence replay of the Dreamer agent: one stream of steps per training env, read back as
fixed-length chunks that start anywhere.

Each stored step is ``(obs_t, a_{t-1}, r_t, is_first_t, is_terminal_t)``: the observation, the
action that led to it and the reward that came with it (zeros on the first step of an episode).
Episodes follow each other in a stream, so a chunk may run from the end of one episode into the
start of the next; the next episode's first step then carries ``is_first``, where the world model
resets its state. A chunk never spans the stream's write position (the oldest and the newest
steps are not neighbours).
"""

from __future__ import annotations

import numpy as np


class SequenceReplay:
    _ARRAYS = ("obs", "actions", "rewards", "is_first", "is_terminal")

    def __init__(self, capacity: int, n_envs: int, obs_dim: int, action_dim: int) -> None:
        """``capacity`` steps per env stream."""
        self.capacity, self.n_envs = capacity, n_envs
        self.obs = np.zeros((n_envs, capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros((n_envs, capacity, action_dim), dtype=np.float32)
        self.rewards = np.zeros((n_envs, capacity), dtype=np.float32)
        self.is_first = np.zeros((n_envs, capacity), dtype=bool)
        self.is_terminal = np.zeros((n_envs, capacity), dtype=bool)
        self.next = np.zeros(n_envs, dtype=np.int64)
        self.size = np.zeros(n_envs, dtype=np.int64)

    def add(
        self,
        env: int,
        obs: np.ndarray,
        action: np.ndarray | None,
        reward: float,
        is_first: bool,
        is_terminal: bool,
    ) -> None:
        """Append one step to ``env``'s stream (``action=None``: zeros, for a first step)."""
        i = self.next[env]
        self.obs[env, i] = obs
        self.actions[env, i] = 0.0 if action is None else action
        self.rewards[env, i] = reward
        self.is_first[env, i] = is_first
        self.is_terminal[env, i] = is_terminal
        self.next[env] = (i + 1) % self.capacity
        self.size[env] = min(self.size[env] + 1, self.capacity)

    def start_episodes(self, obs: np.ndarray, envs: np.ndarray | None = None) -> None:
        """The first observation of a new episode in each of ``envs`` (default: all)."""
        for e in range(self.n_envs) if envs is None else envs:
            self.add(int(e), obs[e], None, 0.0, True, False)

    def can_sample(self, length: int) -> bool:
        return bool((self.size >= length).any())

    def sample(self, batch: int, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``batch`` chunks of ``length`` consecutive steps ``[B, T, ...]``, each from a stream
        drawn in proportion to its number of possible starts, at a uniform start."""
        starts_per_env = np.maximum(self.size - length + 1, 0)
        env = rng.choice(self.n_envs, batch, p=starts_per_env / starts_per_env.sum())
        offset = (rng.random(batch) * starts_per_env[env]).astype(np.int64)
        first = (self.next[env] - self.size[env] + offset) % self.capacity
        index = (first[:, None] + np.arange(length)) % self.capacity
        rows = env[:, None]
        return {name: getattr(self, name)[rows, index] for name in self._ARRAYS}

    # -- checkpointing: counters in the state, the stored steps as arrays ------------------------

    def state_dict(self) -> dict:
        return {"next": self.next.tolist(), "size": self.size.tolist()}

    def load_state_dict(self, state: dict) -> None:
        self.next = np.asarray(state["next"], dtype=np.int64)
        self.size = np.asarray(state["size"], dtype=np.int64)

    def arrays(self) -> dict[str, np.ndarray]:
        used = int(self.size.max())  # rows past every stream's size are still zeros
        return {name: getattr(self, name)[:, :used] for name in self._ARRAYS}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for name in self._ARRAYS:
            stored = getattr(self, name)
            if (
                arrays[name].shape[::2] != stored.shape[::2]
                or arrays[name].shape[1] > stored.shape[1]
            ):
                raise ValueError(
                    f"replay array {name!r} of shape {arrays[name].shape} does not fit "
                    f"{stored.shape}"
                )
            stored[:, : arrays[name].shape[1]] = arrays[name]
