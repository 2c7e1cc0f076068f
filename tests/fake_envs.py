"""Tiny environments with known dynamics, registered for tests (``env=tests.fake_envs:Counter-v0``)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class CounterEnv(gym.Env):
    """obs = [steps taken in this episode, episode number]; reward = 1 per step.

    The episode terminates after ``terminate_at`` steps unless the TimeLimit (``max_episode_steps``)
    truncates it first, so every true transition satisfies next_obs[0] == obs[0] + 1 and keeps
    the episode number: a stored transition that crosses a reset breaks one of the two.
    """

    def __init__(self, terminate_at: int = 7) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.terminate_at = terminate_at
        self.t, self.episode = 0, -1

    def reset(self, *, seed: int | None = None, options: dict | None = None):  # noqa: ANN201
        super().reset(seed=seed)
        self.t, self.episode = 0, self.episode + 1
        return self._obs(), {}

    def step(self, action):  # noqa: ANN001, ANN201
        self.t += 1
        return self._obs(), 1.0, self.t >= self.terminate_at, False, {}

    def _obs(self) -> np.ndarray:
        return np.array([self.t, self.episode], dtype=np.float32)


class ContinuousCounter(CounterEnv):
    """CounterEnv with a Box action space (for SAC / MBPO)."""

    def __init__(self, terminate_at: int = 7) -> None:
        super().__init__(terminate_at)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)


class MultiDiscreteToy(gym.Env):
    """An action space no algorithm here supports."""

    observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    action_space = gym.spaces.MultiDiscrete([2, 3])

    def reset(self, *, seed: int | None = None, options: dict | None = None):  # noqa: ANN201
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):  # noqa: ANN001, ANN201
        return np.zeros(2, dtype=np.float32), 0.0, True, False, {}


class DictObsEnv(gym.Env):
    """Dict observations (a position Box, a Discrete phase, an image-shaped Box): reward 1 when
    the action equals the phase. Five steps, then truncated by the TimeLimit."""

    observation_space = gym.spaces.Dict(
        {
            "pos": gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32),
            "phase": gym.spaces.Discrete(3),
            "image": gym.spaces.Box(0, 255, shape=(2, 2, 1), dtype=np.uint8),
        }
    )
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed: int | None = None, options: dict | None = None):  # noqa: ANN201
        super().reset(seed=seed)
        self.phase = 0
        return self._obs(), {}

    def step(self, action):  # noqa: ANN001, ANN201
        reward = float(int(action) == self.phase)
        self.phase = int(self.np_random.integers(3))
        return self._obs(), reward, False, False, {}

    def _obs(self) -> dict:
        return {
            "pos": np.full(2, self.phase / 3, dtype=np.float32),
            "phase": self.phase,
            "image": np.full((2, 2, 1), 40 * self.phase, dtype=np.uint8),
        }


class FaultyEnv(gym.Env):
    """A random walk that goes wrong from its ``fail_at``-th step on: the observation
    becomes NaN (``fault="nan_obs"``) or the reward explodes to 1e30 (``fault="huge_reward"``,
    finite itself, but its square overflows float32 in the value loss)."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, fault: str = "nan_obs", fail_at: int = 30) -> None:
        self.fault, self.fail_at, self.t = fault, fail_at, 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):  # noqa: ANN201
        super().reset(seed=seed)
        return self.np_random.normal(size=2).astype(np.float32), {}

    def step(self, action):  # noqa: ANN001, ANN201
        self.t += 1
        obs = self.np_random.normal(size=2).astype(np.float32)
        reward = 1.0
        if self.t >= self.fail_at:
            if self.fault == "nan_obs":
                obs[0] = np.nan
            elif self.fault == "overflow_reward":
                reward = 1e300  # finite in float64, inf in float32
            else:
                reward = 1e30
        return obs, reward, False, False, {}


# Counter-v0 always ends by truncation (limit 5 < 7); CounterTerm-v0 always by termination (4 < 50).
gym.register(
    "Counter-v0",
    entry_point=CounterEnv,
    max_episode_steps=5,
    kwargs={"terminate_at": 7},
)
gym.register(
    "CounterTerm-v0",
    entry_point=CounterEnv,
    max_episode_steps=50,
    kwargs={"terminate_at": 4},
)
gym.register("MultiDiscreteToy-v0", entry_point=MultiDiscreteToy)
gym.register(
    "ContinuousCounter-v0",
    entry_point=ContinuousCounter,
    max_episode_steps=5,
    kwargs={"terminate_at": 7},
)
gym.register(
    "NaNObs-v0",
    entry_point=FaultyEnv,
    max_episode_steps=50,
    kwargs={"fault": "nan_obs"},
)
gym.register(
    "HugeReward-v0",
    entry_point=FaultyEnv,
    max_episode_steps=50,
    kwargs={"fault": "huge_reward"},
)
gym.register(
    "OverflowReward-v0",
    entry_point=FaultyEnv,
    max_episode_steps=50,
    kwargs={"fault": "overflow_reward"},
)
gym.register("DictObs-v0", entry_point=DictObsEnv, max_episode_steps=5)


def _refuse_to_build() -> gym.Env:
    raise RuntimeError("simulator licence not found")


gym.register("NeedsLicence-v0", entry_point=_refuse_to_build)
