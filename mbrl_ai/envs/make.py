"""Environment layer: any registered Gymnasium id, vectorised with an explicit autoreset mode.

Training envs use SAME_STEP autoreset: when an episode ends, ``step`` returns the first observation
of the next episode and puts the true last observation in ``info["final_obs"]``. Every transition
the collector stores is therefore a real one (NEXT_STEP would insert a fake transition after each
reset). ``terminated`` and ``truncated`` are kept apart all the way to GAE.

For exact resumption, :func:`get_env_state` reads what a sync vector env's sub-envs hold between
steps: every plain attribute (numbers, numpy arrays, tuples of them) of every wrapper and of the
environment itself, and the state of its random generator. That is the whole dynamic state of
the classic-control environments (CartPole, Pendulum, MountainCar, Acrobot); for MuJoCo
environments the simulator's full integration state (``mj_getState``) is saved as well. An
environment with state of another kind (another physics engine's objects), or an async vector env
whose sub-envs live in other processes, gives None: a resumed run then restarts its episodes.

Any observation space that Gymnasium can flatten reaches the networks as a flat float32 vector
(:class:`FlatObservation`): Discrete and MultiDiscrete as one-hot, MultiBinary as 0/1, Dict and
Tuple as the concatenation of their parts, a Box of any shape flattened. A flat Box is passed as it
is. ``env_kwargs`` go to ``gym.make`` everywhere an environment is built.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv

from mbrl_ai.core.errors import ConfigError
from mbrl_ai.core.utils import decode_plain, encode_plain
from mbrl_ai.envs import conditions, mazes, tasks  # noqa: F401  (register the mbrl_ai/... ids)

# observation spaces the networks can read (flattened by FlatObservation where not a flat Box)
FLATTENABLE: tuple[type[gym.Space], ...] = (
    gym.spaces.Box,
    gym.spaces.Discrete,
    gym.spaces.MultiDiscrete,
    gym.spaces.MultiBinary,
    gym.spaces.Dict,
    gym.spaces.Tuple,
)


class FlatObservation(gym.ObservationWrapper):
    """Observations as flat float32 vectors (``gym.spaces.flatten``: one-hot for Discrete)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        flat = gym.spaces.flatten_space(env.observation_space)
        assert isinstance(flat, gym.spaces.Box)
        self.observation_space = gym.spaces.Box(
            flat.low.astype(np.float32), flat.high.astype(np.float32), dtype=np.float32
        )

    def observation(self, observation: Any) -> np.ndarray:
        flat = gym.spaces.flatten(self.env.observation_space, observation)
        return np.asarray(flat, dtype=np.float32)


def needs_flattening(space: gym.Space) -> bool:
    """Everything but a flat Box goes through :class:`FlatObservation`."""
    return not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1)


@dataclass(frozen=True)
class EnvInfo:
    """What the algorithms need to know about an environment before building networks."""

    env_id: str
    obs_shape: tuple[int, ...]  # what the networks read: (flattened dimension,)
    action_space: gym.Space
    observation_space: gym.Space  # the environment's own
    reward_threshold: float | None
    max_episode_steps: int | None
    step_aware: bool = False  # it changes with the run's progress (``set_run_step``, conditions.py)

    @property
    def obs_dim(self) -> int:
        return int(np.prod(self.obs_shape))

    @property
    def discrete(self) -> bool:
        return isinstance(self.action_space, gym.spaces.Discrete)

    @property
    def action_dim(self) -> int:
        """Number of actions (Discrete) or action vector length (Box)."""
        if isinstance(self.action_space, gym.spaces.Discrete):
            return int(self.action_space.n)
        assert self.action_space.shape is not None  # Box: the only other action space supported
        return int(np.prod(self.action_space.shape))


def refuse_untrusted_module(
    env_id: str, trust: bool, how: str = "pass trust=true if you trust it"
) -> None:
    """A saved run's ``module:Env-v0`` would import (run) ``module`` from wherever the command
    runs: unless ``trust``, refuse it when the module is not imported already (``how``: how the
    user says they trust it)."""
    module = env_id.split(":", 1)[0] if ":" in env_id else None
    if module is not None and not trust and module not in sys.modules:
        raise ConfigError(
            "env",
            env_id,
            f"the saved run names module '{module}', which would be imported and run; {how}",
        )


def find_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registered spec of ``env_id``; ``module:Env-v0`` imports ``module`` first.

    Raises ConfigError with Gymnasium's own message (which includes its "did you mean").
    """
    name = env_id
    if ":" in env_id:
        module, name = env_id.split(":", 1)
        try:
            importlib.import_module(module)
        except Exception as exc:  # missing, or raising while it is imported
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError("env", env_id, f"cannot import module '{module}': {first}") from None
    try:
        return gym.spec(name)
    except gym.error.Error as exc:
        raise ConfigError(
            "env", env_id, f"{exc} (any registered Gymnasium id is allowed)"
        ) from None


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    """One environment of ``env_id`` with ``env_kwargs``, observations flattened where needed.

    Raises ConfigError naming ``env_kwargs`` when the environment does not take them.
    """
    spec = find_spec(env_id)
    kwargs = dict(env_kwargs or {})
    try:
        env = gym.make(spec, **kwargs)
    except (TypeError, ValueError, KeyError) as exc:
        if not kwargs:
            raise
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        if isinstance(exc, TypeError) and "unexpected keyword" in str(exc):
            raise ConfigError("env_kwargs", shown, f"{env_id} does not take them: {exc}") from None
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        why = f"{type(exc).__name__} {text}" if isinstance(exc, KeyError) else text
        raise ConfigError("env_kwargs", shown, f"{env_id} refused them: {why}") from None
    return FlatObservation(env) if needs_flattening(env.observation_space) else env


def inspect_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> EnvInfo:
    """Build one env to read its spaces (``mbrl_ai.algos.check_spaces`` checks them)."""
    spec = find_spec(env_id)
    try:
        env = make_env(env_id, env_kwargs)
    except ConfigError:
        raise
    except Exception as exc:  # a missing dependency (Box2D, MuJoCo, jax), a failing constructor
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError("env", env_id, f"cannot be built: {first}") from None
    try:
        inner = env.env if isinstance(env, FlatObservation) else env
        obs_space, action_space = inner.observation_space, env.action_space
        flat_shape = env.observation_space.shape
        step_aware = env.has_wrapper_attr("set_run_step")
    finally:
        env.close()
    return EnvInfo(
        env_id=env_id,
        obs_shape=tuple(flat_shape or ()),
        action_space=action_space,
        observation_space=obs_space,
        reward_threshold=spec.reward_threshold,
        max_episode_steps=spec.max_episode_steps,
        step_aware=step_aware,
    )


def make_vec_env(
    env_id: str,
    n_envs: int,
    seed: int,
    vectorization: str = "sync",
    env_kwargs: dict[str, Any] | None = None,
    default_time_limit: int | None = None,
    wrapper: Callable[[gym.Env], gym.Env] | None = None,
) -> VectorEnv:
    """``n_envs`` copies of ``env_id`` (built by :func:`make_env`) with SAME_STEP autoreset;
    ``default_time_limit`` truncates episodes of an env whose spec sets no time limit; ``wrapper``
    wraps each (a change of the world, ``mbrl_ai.envs.change``).

    Returns the env and leaves it reset; call ``reset`` yourself to read the first observation.
    """
    probe = make_env(env_id, env_kwargs)  # bad env_kwargs: one line; flattened or not
    flatten = isinstance(probe, FlatObservation)
    probe.close()
    spec = find_spec(env_id)
    limit = {}
    if spec.max_episode_steps is None and default_time_limit is not None:
        limit = {"max_episode_steps": default_time_limit}
    envs = gym.make_vec(
        spec,
        num_envs=n_envs,
        vectorization_mode=vectorization,
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        wrappers=[w for w in (wrapper, FlatObservation if flatten else None) if w] or None,  # type: ignore[misc]
        **(env_kwargs or {}),
        **limit,
    )
    envs.action_space.seed(seed)
    return envs


def final_observations(next_obs: np.ndarray, infos: dict, done: np.ndarray) -> np.ndarray:
    """The true successor of every env's step: ``final_obs`` where an episode ended, else ``next_obs``.

    With SAME_STEP autoreset ``next_obs`` already holds the reset observation for finished envs.
    """
    if not done.any():
        return next_obs
    real_next = next_obs.copy()
    mask = infos["_final_obs"]
    real_next[mask] = np.stack(infos["final_obs"][mask])
    return real_next


# attributes that are configuration, rendering or bookkeeping of the wrapper chain, not state
_NOT_STATE = frozenset(
    {
        "env",
        "_saved_kwargs",
        "_action_space",
        "_observation_space",
        "_metadata",
        "_cached_spec",
        "spec",
        "action_space",
        "observation_space",
        "metadata",
        "render_mode",
        "screen",
        "clock",
        "_previous_data",  # PassiveEnvChecker's copy of the last output, for a warning only
        "model",  # MuJoCo: the compiled model (constant); its state is in "data"
        "mujoco_renderer",
        "P",  # toy-text envs: the transition table and map, both fixed by the env's arguments
        "desc",
    }
)


def _mujoco_state(env: gym.Env, data: object, read: bool, saved: object = None) -> object:
    """MuJoCo's full integration state (positions, velocities, activations, warm start, time)."""
    import mujoco

    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    unwrapped: Any = env.unwrapped  # a MuJoCo env: gym.Env does not declare ``model``
    model = unwrapped.model
    if read:
        state = np.empty(mujoco.mj_stateSize(model, spec))
        mujoco.mj_getState(model, data, state, spec)
        return state
    mujoco.mj_setState(model, data, np.asarray(saved, dtype=np.float64), spec)
    mujoco.mj_forward(model, data)
    return None


def _layers(env: gym.Env) -> list[gym.Env]:
    """The wrapper chain of ``env``, outermost first, ending with the environment itself."""
    chain = [env]
    while isinstance(chain[-1], gym.Wrapper):
        chain.append(chain[-1].env)
    return chain


def get_env_state(envs: VectorEnv) -> list[list[dict]] | None:
    """Per sub-env, per layer of its wrapper chain: the plain attributes and generator states.

    None when some state cannot be saved this way (see the module docstring).
    """
    if not isinstance(envs, SyncVectorEnv):
        return None
    states = []
    for env in envs.envs:
        layers = []
        for layer in _layers(env):
            attrs: dict = {"__type__": type(layer).__name__}
            for key, value in vars(layer).items():
                if key in _NOT_STATE:
                    continue
                if isinstance(value, np.random.Generator):
                    attrs[key] = {"__generator__": value.bit_generator.state}
                    continue
                if type(value).__name__ == "MjData":
                    attrs[key] = {"__mjstate__": encode_plain(_mujoco_state(layer, value, True))}
                    continue
                try:
                    attrs[key] = encode_plain(value)
                except TypeError:
                    return None
            layers.append(attrs)
        states.append(layers)
    return states


def set_env_state(envs: VectorEnv, states: list[list[dict]]) -> None:
    """Put back what :func:`get_env_state` read, into envs built from the same id."""
    assert isinstance(envs, SyncVectorEnv) and len(states) == len(envs.envs)
    for env, layers in zip(envs.envs, states, strict=True):
        chain = _layers(env)
        if [type(layer).__name__ for layer in chain] != [a["__type__"] for a in layers]:
            raise ValueError("the saved environment state is of another wrapper chain")
        for layer, attrs in zip(chain, layers, strict=True):
            for key, value in attrs.items():
                if key == "__type__":
                    continue
                if isinstance(value, dict) and "__mjstate__" in value:
                    _mujoco_state(
                        layer,
                        getattr(layer, key),
                        False,
                        decode_plain(value["__mjstate__"]),
                    )
                elif isinstance(value, dict) and "__generator__" in value:
                    saved = value["__generator__"]
                    bit_generator = getattr(np.random, saved["bit_generator"])()
                    bit_generator.state = saved
                    setattr(layer, key, np.random.Generator(bit_generator))
                else:
                    setattr(layer, key, decode_plain(value))
