"""Buffers that outlive an iteration.

``sample_mixed`` draws the off-policy learners' minibatches (SAC, MBPO, Dyna-DQN) as a typed
:class:`TensorBatch`, from the real replay alone or mixed with imagined transitions.

``ReplayBuffer`` keeps every real transition (up to ``capacity``, oldest dropped first) for fitting
the world model: the on-policy rollout is discarded after each update, but the model must not
forget older data. Each transition is assigned to the training or the held-out split once, when it
is added, so held-out scores are never computed on data the model was fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
import torch


@dataclass(frozen=True)
class Transitions:
    """A batch of real transitions ``[B, ...]`` (numpy)."""

    obs: np.ndarray  # [B, obs_dim]
    actions: np.ndarray  # [B] int (Discrete) or [B, act_dim] float (Box)
    rewards: np.ndarray  # [B]
    next_obs: np.ndarray  # [B, obs_dim] the true successor (final_obs where an episode ended)
    terminated: np.ndarray  # [B] bool

    def __len__(self) -> int:
        return len(self.rewards)


class ReplayBuffer:
    """A ring buffer of real transitions with a fixed train / held-out assignment."""

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        action_shape: tuple[int, ...],
        discrete: bool,
        holdout_fraction: float,
        seed: int,
    ) -> None:
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros(
            (capacity, *action_shape), dtype=np.int64 if discrete else np.float32
        )
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=bool)
        self.holdout = np.zeros(capacity, dtype=bool)
        self.holdout_fraction = holdout_fraction
        self.rng = np.random.default_rng(seed)
        self.size = 0
        self.next = 0

    def add(self, batch: Transitions) -> None:
        """Append transitions, overwriting the oldest once full."""
        n = len(batch)
        idx = (self.next + np.arange(n)) % self.capacity
        self.obs[idx] = batch.obs
        self.actions[idx] = batch.actions
        self.rewards[idx] = batch.rewards
        self.next_obs[idx] = batch.next_obs
        self.terminated[idx] = batch.terminated
        self.holdout[idx] = self.rng.random(n) < self.holdout_fraction
        self.next = int((self.next + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def indices(self, holdout: bool) -> np.ndarray:
        """Indices of the stored training (``holdout=False``) or held-out transitions."""
        return np.flatnonzero(self.holdout[: self.size] == holdout)

    def get(self, idx: np.ndarray) -> Transitions:
        return Transitions(
            self.obs[idx],
            self.actions[idx],
            self.rewards[idx],
            self.next_obs[idx],
            self.terminated[idx],
        )

    def recent_obs(self, window: int) -> np.ndarray:
        """The ``window`` most recently added states s (never a final observation)."""
        n = min(window, self.size)
        return self.obs[(self.next - n + np.arange(n)) % self.capacity]

    def all(self) -> Transitions:
        return self.get(np.arange(self.size))

    def keep_newest(self, n: int) -> None:
        """Forget all but the ``n`` most recently added transitions (kept in order, with their
        held-out flags)."""
        n = min(n, self.size)
        order = (self.next - n + np.arange(n)) % self.capacity
        for name in self._ARRAYS:
            array = getattr(self, name)
            array[:n] = array[order]
        self.size, self.next = n, n % self.capacity

    # -- checkpointing: counters and generator in the state, the stored rows as arrays ---------

    _ARRAYS = ("obs", "actions", "rewards", "next_obs", "terminated", "holdout")

    def state_dict(self) -> dict:
        return {
            "size": self.size,
            "next": self.next,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        self.size, self.next = state["size"], state["next"]
        self.rng.bit_generator.state = state["rng"]

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name)[: self.size] for name in self._ARRAYS}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for name in self._ARRAYS:
            stored = getattr(self, name)
            if arrays[name].shape[1:] != stored.shape[1:] or len(arrays[name]) > len(stored):
                raise ValueError(
                    f"replay array {name!r} of shape {arrays[name].shape} does not fit"
                )
            stored[: len(arrays[name])] = arrays[name]


class ModelBuffer:
    """MBPO's buffer of imagined transitions: a ring whose capacity follows the rollout length.

    ``set_capacity`` is MBPO's rebuild when H changes (rollout_batch_size × H × retained model
    updates): the newest transitions are kept, in order, up to the new capacity. The arrays are
    allocated once at the largest capacity the run can ask for.
    """

    _ARRAYS = ("obs", "actions", "rewards", "next_obs", "terminated")

    def __init__(self, max_capacity: int, obs_dim: int, action_dim: int) -> None:
        self.max_capacity = max_capacity
        self.obs = np.zeros((max_capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros((max_capacity, action_dim), dtype=np.float32)
        self.rewards = np.zeros(max_capacity, dtype=np.float32)
        self.next_obs = np.zeros((max_capacity, obs_dim), dtype=np.float32)
        self.terminated = np.zeros(max_capacity, dtype=bool)
        self.capacity, self.size, self.next = max_capacity, 0, 0

    def _ordered(self) -> np.ndarray:
        """Indices of the stored rows, oldest first."""
        return (self.next - self.size + np.arange(self.size)) % self.capacity

    def set_capacity(self, capacity: int) -> None:
        if not 1 <= capacity <= self.max_capacity:
            raise ValueError(f"capacity {capacity} outside [1, {self.max_capacity}]")
        if capacity == self.capacity:
            return
        keep = self._ordered()[-capacity:]
        for name in self._ARRAYS:
            arr = getattr(self, name)
            arr[: len(keep)] = arr[keep].copy()
        self.capacity, self.size = capacity, len(keep)
        self.next = self.size % capacity

    def add(self, batch: Transitions) -> None:
        n = min(len(batch), self.capacity)
        idx = (self.next + np.arange(n)) % self.capacity
        for name in self._ARRAYS:
            getattr(self, name)[idx] = getattr(batch, name)[-n:]
        self.next = int((self.next + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def get(self, idx: np.ndarray) -> Transitions:
        return Transitions(*(getattr(self, name)[idx] for name in self._ARRAYS))

    def state_dict(self) -> dict:
        return {"capacity": self.capacity, "size": self.size, "next": self.next}

    def load_state_dict(self, state: dict) -> None:
        self.capacity, self.size, self.next = (
            state["capacity"],
            state["size"],
            state["next"],
        )

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name)[: self.capacity] for name in self._ARRAYS}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for name in self._ARRAYS:
            getattr(self, name)[: len(arrays[name])] = arrays[name]


class TensorBatch(NamedTuple):
    """A minibatch of transitions as tensors on the learner's device."""

    obs: torch.Tensor  # [B, obs_dim] float32
    actions: torch.Tensor  # [B, act_dim] float32 (Box) or [B] int64 (Discrete)
    rewards: torch.Tensor  # [B] float32
    next_obs: torch.Tensor  # [B, obs_dim] float32
    terminated: torch.Tensor  # [B] float32 (1.0: no bootstrap)


class Sampled(Protocol):
    """A buffer minibatches are drawn from (:class:`ReplayBuffer`, :class:`ModelBuffer`)."""

    @property
    def size(self) -> int: ...

    def get(self, idx: np.ndarray) -> Transitions: ...


def sample_mixed(
    real: Sampled,
    imagined: Sampled | None,
    size: int,
    real_ratio: float,
    rng: np.random.Generator,
    device: torch.device,
    action_dtype: torch.dtype = torch.float32,
) -> TensorBatch:
    """``size`` transitions drawn uniformly, ``real_ratio`` of them from ``real`` and the rest from
    ``imagined`` (all real while nothing is imagined, or with ``imagined=None``)."""
    empty = imagined is None or imagined.size == 0
    n_real = size if empty else int(round(size * real_ratio))
    parts = [real.get(rng.integers(0, real.size, n_real))]
    if n_real < size:
        assert imagined is not None
        parts.append(imagined.get(rng.integers(0, imagined.size, size - n_real)))

    def tensor(key: str, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(np.concatenate([getattr(p, key) for p in parts]), device=device).to(
            dtype
        )

    return TensorBatch(
        tensor("obs", torch.float32),
        tensor("actions", action_dtype),
        tensor("rewards", torch.float32),
        tensor("next_obs", torch.float32),
        tensor("terminated", torch.float32),
    )
