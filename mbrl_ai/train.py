"""Entry point: compose → validate → dispatch on ``cfg.algo.name``.

    python -m mbrl_ai.train env=CartPole-v1 planning_horizon=5
    python -m mbrl_ai.train experiment=ppo_cartpole seed=3
    python -m mbrl_ai.train -m seed=0,1,2 lr_actor_critic=3e-4,1e-3

Bad input is refused before any work: every override (every value of a sweep) is composed and
checked first, and the first problem is printed as one line on stderr with exit code 2.
"""

from __future__ import annotations

import dataclasses
import difflib
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

from mbrl_ai.config import Config, ConfigError, config_dict, to_config
from mbrl_ai.envs import check_action_space, inspect_env

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
ConfigStore.instance().store(name="base_config", node=Config)

# Hydra flags that take a value, and those after which our pre-check steps aside (help, info,
# alternative primary configs): Hydra handles them itself.
_FLAGS_WITH_VALUE = {
    "--cfg",
    "-c",
    "--package",
    "-p",
    "--experimental-rerun",
    "--config-name",
    "-cn",
    "--config-path",
    "-cp",
    "--config-dir",
    "-cd",
    "--info",
    "-i",
}
_FLAGS_HYDRA_OWNS = {
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
    "--config-name",
    "-cn",
    "--config-path",
    "-cp",
    "--config-dir",
    "-cd",
    "--experimental-rerun",
}


def _algorithms() -> dict[str, tuple[Callable[[Config, Path], Any], tuple[type[gym.Space], ...]]]:
    """Algorithm name → (training function, action spaces it supports)."""
    from mbrl_ai.algos import ppo

    return {"ppo": (ppo.train_ppo, ppo.SUPPORTED_ACTION_SPACES)}


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


def _schema_type(path: str) -> Any:
    """The annotated type of a dotted key in :class:`Config`, or None when the key does not exist."""
    node: Any = Config
    hint: Any = None
    for part in path.split("."):
        if not (isinstance(node, type) and dataclasses.is_dataclass(node)):
            return None
        hints = typing.get_type_hints(node)
        if part not in hints:
            return None
        hint = hints[part]
        node = hint
    return hint


def _type_name(hint: Any) -> str:
    return (
        getattr(hint, "__name__", None)
        if isinstance(hint, type)
        else str(hint).replace("typing.", "")
    )


def _check_override_key(key: str, value: Any, groups: dict[str, list[str]]) -> None:
    """Refuse an override of a key the schema does not have, or of a group option that is not there."""
    if key.startswith("hydra"):
        return
    if "/" in key or key in groups:
        group = key.split("/")[0]
        if group not in groups:
            raise ConfigError(
                key, value, f"unknown config group; allowed: {', '.join(sorted(groups))}"
            )
        return
    if _schema_type(key) is None:
        parent, _, leaf = key.rpartition(".")
        scope = _schema_type(parent) if parent else Config
        names = (
            [f.name for f in dataclasses.fields(scope)] if dataclasses.is_dataclass(scope) else []
        )
        close = difflib.get_close_matches(leaf, names, n=1)
        hint = f"did you mean '{(parent + '.') if parent else ''}{close[0]}'? " if close else ""
        known = (
            f"known keys{' under ' + parent if parent else ''}: {', '.join(names)}" if names else ""
        )
        raise ConfigError(key, value, f"unknown key; {hint}{known}".rstrip("; "))


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
    hint = _schema_type(key) if key else None
    lowered = message.lower()
    if hint is not None and ("could not be converted" in lowered or "is not a" in lowered):
        message = f"expected {_type_name(hint)}"
    return ConfigError(key or "override", value, message)


def precheck(argv: list[str]) -> None:
    """Compose and validate every configuration the command line asks for; raise ConfigError."""
    overrides: list[str] = []
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
            continue
        if arg.startswith("-") and "=" not in arg.lstrip("-+~"):
            if arg in _FLAGS_HYDRA_OWNS:
                return
            skip_next = arg in _FLAGS_WITH_VALUE
            continue
        overrides.append(arg)

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
