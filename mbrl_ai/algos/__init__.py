"""The algorithm registry: ``algo=<name>`` → everything the rest of the program needs.

An algorithm is one module that ends in ``register(AlgorithmSpec(...))``: its training function,
the config nodes it owns (dataclasses with a ``check`` method, added to the config schema under
their ``key``), the observation and action spaces it handles, and how to rebuild its policy from
a checkpoint for ``evaluate`` and ``visualize``. ``train``, ``evaluate``, ``visualize`` and config
validation go through :func:`get`; none of them names an algorithm.

Built-in algorithms are the modules and packages of this folder, found by scanning it
(:func:`load_builtins`); each owns its config node, its choice lists and its helpers. Others are imported from
the modules named in the ``MBRL_AI_PLUGINS`` environment variable (comma-separated) or from the
``mbrl_ai.algorithms`` entry-point group of an installed package, before the config is composed.
Each also needs a Hydra option ``algo=<name>``: a file ``conf/algo/<name>.yaml``, or ``algo_yaml``
on its spec (stored in Hydra's config store).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from mbrl_ai.config import ALGORITHM_KEYS, RUN_KEYS, Config, ConfigError
from mbrl_ai.config import to_config as _to_config
from mbrl_ai.core.checkpoint import misfit, read_checkpoint
from mbrl_ai.envs import FLATTENABLE, EnvInfo, inspect_env, refuse_untrusted_module
from mbrl_ai.modules import RunningMeanStd
from mbrl_ai.modules.actor import Policy

PLUGINS_ENV = "MBRL_AI_PLUGINS"
ENTRY_POINT_GROUP = "mbrl_ai.algorithms"


# (config, env, state dicts of the checkpoint's tracked objects) → (policy, observation normaliser)
PolicyLoader = Callable[[Config, EnvInfo, Mapping[str, Any]], tuple[Policy, RunningMeanStd | None]]
# (config, env, the checkpoint's objects, a real episode's states [T + 1, obs_dim] and env actions
# [T, ...], start steps, horizon) → {start: imagined states [samples, k + 1, obs_dim]}, rolled out
# open-loop with the episode's actions (k = min(horizon, T − start))
OpenLoop = Callable[
    [Config, EnvInfo, Mapping[str, Any], np.ndarray, np.ndarray, list[int], int],
    dict[int, np.ndarray],
]


@dataclass(frozen=True)
class AlgorithmSpec:
    """What ``algo=<name>`` means to the program."""

    name: str
    train: Callable[[Config, Path], Any]
    """Train into a run directory (resuming from its checkpoint); returns a result with ``evals``."""
    load_policy: PolicyLoader
    """Rebuild the trained policy from a checkpoint (``evaluate``, ``visualize``)."""
    action_spaces: tuple[type[gym.Space], ...]
    observation_spaces: tuple[type[gym.Space], ...] = FLATTENABLE
    """Observation spaces it reads (default: all that ``envs.FlatObservation`` flattens)."""
    nodes: tuple[type, ...] = ()
    """Config nodes this algorithm owns (dataclasses with a ``key`` class attribute and a
    ``check(self, cfg)`` method); nodes may be shared by several algorithms (SAC's by MBPO)."""
    check: Callable[[Config], None] | None = None
    """Checks across nodes that only this algorithm needs (raise ``ConfigError``)."""
    check_env: Callable[[Config, EnvInfo], None] | None = None
    """Checks of its options against the env's spaces (raise ``ConfigError``); run with
    :func:`check_spaces`, before any work starts."""
    world_model: bool = False
    """Its checkpoints hold a ``world_model`` (``visualize`` can show it)."""
    open_loop: OpenLoop | None = None
    """How ``visualize`` rolls out a world model that is not the ensemble ``world_model`` of
    ``world_model.*`` (e.g. Dreamer's latent model, decoded)."""
    curiosity: bool = False
    """It runs the curiosity module of ``curiosity.*`` (with a world model: also ``disagreement``)."""
    smoke: tuple[str, ...] = ()
    """Overrides (besides ``algo=<name>``) for a run of a few seconds on a CPU: several
    iterations, an evaluation and a checkpoint before the end. The tests that every registered
    algorithm must pass (stops, resumption, damaged checkpoints) train it with these; an
    algorithm without them fails those tests."""
    algo_yaml: Mapping[str, Any] | None = field(default=None)
    """The ``algo=<name>`` option for an algorithm that has no ``conf/algo/<name>.yaml``."""
    reads: tuple[str, ...] | None = None
    """The root keys and nodes of :class:`~mbrl_ai.config.Config` it reads besides the run's own
    (``config.RUN_KEYS``); ``None``: all of them. Its own ``nodes`` always count. The rest are
    refused when set on the command line and left out of the run's ``config.yaml`` and W&B
    config."""


_REGISTRY: dict[str, AlgorithmSpec] = {}
_NODES: dict[str, type] = {}


def register(spec: AlgorithmSpec) -> AlgorithmSpec:
    """Add an algorithm (and its config nodes); a name or node key may be registered once."""
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"algorithm {spec.name!r} is already registered")
    for node in spec.nodes:
        key = node.key  # type: ignore[attr-defined]
        if _NODES.get(key, node) is not node:
            raise ValueError(f"config node {key!r} is already registered by another class")
        if key in {f.name for f in dataclasses.fields(Config)}:
            raise ValueError(f"config node {key!r} would shadow a key of the root config")
        _NODES[key] = node
    base = {f.name for f in dataclasses.fields(Config)}
    unknown = set(spec.reads or ()) - base
    if unknown:
        raise ValueError(f"algorithm {spec.name!r} reads keys the config lacks: {sorted(unknown)}")
    reads = set(spec.reads) if spec.reads is not None else base - set(RUN_KEYS)
    ALGORITHM_KEYS[spec.name] = frozenset(reads | {n.key for n in spec.nodes})  # type: ignore[attr-defined]
    _REGISTRY[spec.name] = spec
    if spec.algo_yaml is not None:
        ConfigStore.instance().store(group="algo", name=spec.name, node=dict(spec.algo_yaml))
    config_schema.cache_clear()
    return spec


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str) -> AlgorithmSpec:
    """The spec of ``algo=<name>``; a ConfigError naming the registered ones otherwise."""
    if name not in _REGISTRY:
        raise ConfigError("algo.name", name, f"allowed: {', '.join(names())}")
    return _REGISTRY[name]


@functools.cache
def config_schema() -> type[Config]:
    """:class:`~mbrl_ai.config.Config` with every registered algorithm's nodes as fields."""
    extra = [(key, node, field(default_factory=node)) for key, node in sorted(_NODES.items())]
    return dataclasses.make_dataclass("Config", extra, bases=(Config,))


def check_algorithm(cfg: Config) -> None:
    """The algorithm exists, and its own cross-node checks pass."""
    spec = get(cfg.algo.name)
    if cfg.curiosity.name == "disagreement" and not (spec.world_model and spec.curiosity):
        able = [n for n in names() if _REGISTRY[n].world_model and _REGISTRY[n].curiosity]
        raise ConfigError(
            "curiosity.name",
            cfg.curiosity.name,
            f"needs the world model of an algorithm with curiosity (algo={cfg.algo.name}); "
            f"allowed with algo={', '.join(able)}",
        )
    if spec.check is not None:
        spec.check(cfg)


def to_config(cfg: DictConfig) -> Config:
    """A composed config → a checked Config of :func:`config_schema` (or ConfigError)."""
    config = _to_config(cfg, config_schema())
    check_algorithm(config)
    return config


def check_spaces(info: EnvInfo, algo: str, cfg: Config | None = None) -> None:
    """Refuse an env whose spaces the algorithm cannot handle (and, given ``cfg``, options of
    the algorithm that the spaces rule out), before any work starts."""
    spec = get(algo)
    for what, space, allowed in (
        ("observation", info.observation_space, spec.observation_spaces),
        ("action", info.action_space, spec.action_spaces),
    ):
        if not isinstance(space, allowed):
            kinds = ", ".join(s.__name__ for s in allowed)
            raise ConfigError(
                "env",
                info.env_id,
                f"algo={algo} does not support {what} space {space}; allowed: {kinds}",
            )
    if cfg is not None and spec.check_env is not None:
        spec.check_env(cfg, info)


def load_policy(path: Path, trust: bool = True) -> tuple[Policy, RunningMeanStd | None, Config]:
    """The policy (and observation normaliser) of a run directory's newest checkpoint, or of one
    checkpoint directory, with the run's config. Without ``trust``, a module named in the saved
    env id is not imported (``envs.refuse_untrusted_module``)."""
    state, _ = read_checkpoint(path, with_arrays=False)
    cfg = to_config(OmegaConf.create(state["config"]))
    refuse_untrusted_module(cfg.env, trust)
    info, spec = inspect_env(cfg.env, cfg.env_kwargs), get(cfg.algo.name)
    try:
        policy, obs_rms = spec.load_policy(cfg, info, state["objects"])
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
        raise misfit(path, exc) from None
    return policy, obs_rms, cfg


def load_plugins() -> None:
    """Import the algorithms of ``MBRL_AI_PLUGINS`` and of the ``mbrl_ai.algorithms`` entry
    points (each registers itself). The entry points (``train``, ``evaluate``, ``visualize``) call
    this before reading any config; an import that fails is a :class:`ConfigError`."""
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(PLUGINS_ENV, module, f"cannot import it: {exc}") from None
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def load_builtins() -> None:
    """Import every module and package of this folder: each built-in algorithm registers itself.
    A new one is found by being here; nothing lists it."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


load_builtins()
