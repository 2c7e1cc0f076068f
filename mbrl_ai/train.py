"""Entry point: compose → validate → dispatch on ``cfg.algo.name``.

    python -m mbrl_ai.train env=CartPole-v1 planning_horizon=5
    python -m mbrl_ai.train experiment=ppo_cartpole seed=3
    python -m mbrl_ai.train -m seed=0,1,2 lr_actor_critic=3e-4,1e-3

Bad input is refused before any work: every override (every value of a sweep) is composed and
checked first, and the first problem is printed as one line on stderr with exit code 2.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from mbrl_ai.config import (
    Config,
    ConfigError,
    config_dict,
    schema_node,
    schema_type,
    to_config,
    unknown_key,
)
from mbrl_ai.envs import check_action_space, inspect_env

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
ConfigStore.instance().store(name="base_config", node=Config)

# Flags after which Hydra does something other than a plain run (help, printing the config, another
# primary config or package): the pre-check steps aside and leaves them to Hydra.
_HYDRA_ONLY_FLAGS = frozenset(
    [
        "--help",
        "-h",
        "--hydra-help",
        "--version",
        "--cfg",
        "-c",
        "--info",
        "-i",
        "--shell-completion",
        "-sc",
        "--package",
        "-p",
        "--config-name",
        "-cn",
        "--config-path",
        "-cp",
        "--config-dir",
        "-cd",
        "--experimental-rerun",
    ]
)


def _algorithms() -> dict[str, tuple[Callable[[Config, Path], Any], tuple[type[gym.Space], ...]]]:
    """Algorithm name → (training function, action spaces it supports)."""
    from mbrl_ai import trainer
    from mbrl_ai.algos import ppo

    return {
        "mbppo": (trainer.train_mbppo, trainer.SUPPORTED_ACTION_SPACES),
        "ppo": (ppo.train_ppo, ppo.SUPPORTED_ACTION_SPACES),
    }


def check_run(cfg: Config) -> None:
    """Checks that need the environment: the id exists and the algorithm handles its actions."""
    info = inspect_env(cfg.env)
    _, spaces = _algorithms()[cfg.algo.name]
    check_action_space(info, cfg.algo.name, spaces)


# ----------------------------------------------------------------------------------------------
# pre-check of the command line
# ----------------------------------------------------------------------------------------------


def _groups() -> dict[str, list[str]]:
    return {
        g.name: sorted(p.stem for p in g.glob("*.yaml"))
        for g in Path(CONF_DIR).iterdir()
        if g.is_dir()
    }


def _check_override_key(key: str, value: Any, groups: dict[str, list[str]]) -> None:
    """Refuse an override of a key the schema does not have, or of a group that is not there."""
    if key.startswith("hydra"):
        return
    if "/" in key or key in groups:
        if key.split("/")[0] not in groups:
            raise ConfigError(
                key, value, f"unknown config group; allowed: {', '.join(sorted(groups))}"
            )
        return
    if schema_type(key) is None:
        parent = schema_node(key.rpartition(".")[0])
        known = [f.name for f in dataclasses.fields(parent)] if parent is not None else []
        raise unknown_key(key, value, known)


def _compose(overrides: list[str]) -> DictConfig:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def compose_config(overrides: list[str]) -> Config:
    """The checked Config that ``python -m mbrl_ai.train <overrides>`` runs (for scripts and tests)."""
    return to_config(_compose(overrides))


def _composition_error(exc: Exception, overrides: list[str]) -> ConfigError:
    """Turn Hydra's multi-line composition error into one ConfigError line."""
    cause = exc.__cause__ or exc
    key = getattr(cause, "full_key", None) or ""
    message = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    value: Any = None
    for o in overrides:
        k, _, v = o.lstrip("+~").partition("=")
        if k == key or (not key and k in str(exc)):
            key, value = k, v
    expected = schema_type(key) if key else None
    lowered = message.lower()
    if expected is not None and ("could not be converted" in lowered or "is not a" in lowered):
        message = f"expected {expected}"
    return ConfigError(key or "override", value, message)


def precheck(argv: list[str]) -> None:
    """Compose and validate every configuration the command line asks for; raise ConfigError."""
    if any(arg in _HYDRA_ONLY_FLAGS for arg in argv):
        return
    overrides = [arg for arg in argv if arg not in ("-m", "--multirun")]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError("override", " ".join(overrides), f"cannot parse: {first}") from None

    groups = _groups()
    base: list[str] = []
    sweeps: list[tuple[str, list[str]]] = []  # (prefix 'key=' with +/~ markers, values)
    for o in parsed:
        key = o.key_or_group
        if key.startswith("hydra"):
            continue
        value = None if o.is_delete() else (o.input_line.partition("=")[2])
        _check_override_key(key, value, groups)
        prefix = o.input_line.partition("=")[0] + "="
        if o.is_sweep_override():
            try:
                values = list(o.sweep_string_iterator())
            except Exception:  # interval sweeps (for optimising sweepers) cannot be enumerated
                continue
            sweeps.append((prefix, values))
            base.append(prefix + values[0])
        else:
            if key in groups and isinstance(o.value(), str) and o.value() not in groups[key]:
                raise ConfigError(
                    key, o.value(), f"no such option; allowed: {', '.join(groups[key])}"
                )
            base.append(o.input_line)

    candidates = [base]
    for prefix, values in sweeps:
        for v in values[1:]:
            candidates.append([prefix + v if o.startswith(prefix) else o for o in base])
    checked: set[tuple[str, str]] = set()
    for ovr in candidates:
        try:
            composed = _compose(ovr)
        except ConfigError:
            raise
        except Exception as exc:
            raise _composition_error(exc, ovr) from None
        cfg = to_config(composed)
        if (cfg.env, cfg.algo.name) not in checked:
            check_run(cfg)
            checked.add((cfg.env, cfg.algo.name))


# ----------------------------------------------------------------------------------------------
# the Hydra task
# ----------------------------------------------------------------------------------------------


def run(cfg: Config, out_dir: Path) -> Any:
    """Train ``cfg`` into ``out_dir`` (the function tests and scripts call without Hydra)."""
    check_run(cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(config_dict(cfg))))
    train_fn, _ = _algorithms()[cfg.algo.name]
    return train_fn(cfg, out_dir)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _task(dcfg: DictConfig) -> float | None:
    try:
        cfg = to_config(dcfg)
        check_run(cfg)
    except ConfigError as exc:
        _fail(exc)
    result = run(cfg, Path(HydraConfig.get().runtime.output_dir))
    evals = getattr(result, "evals", None)
    return float(evals[-1]["mean_return"]) if evals else None


def _fail(exc: ConfigError) -> typing.NoReturn:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    try:
        precheck(sys.argv[1:])
    except ConfigError as exc:
        _fail(exc)
    _task()


if __name__ == "__main__":
    main()
