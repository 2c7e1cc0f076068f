"""Composing the config that ``python -m mbrl_ai.train <overrides>`` runs, without Hydra's app.

:func:`prepare` imports plugin algorithms and stores the root schema with every registered
algorithm's nodes; :func:`compose_config` is the checked :class:`~mbrl_ai.config.Config` of a
command line (what tests and scripts call).
"""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from mbrl_ai import algos
from mbrl_ai.algos import config_schema, to_config
from mbrl_ai.config import Config

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")
# ``${or_default:a,b}``: a unless it is empty (sweep folders of runs without overrides)
OmegaConf.register_new_resolver("or_default", lambda value, default: value or default, replace=True)


def prepare() -> None:
    """Import plugin algorithms, then give Hydra the root schema with every registered
    algorithm's nodes (raises ConfigError for a plugin that cannot be imported)."""
    algos.load_plugins()
    ConfigStore.instance().store(name="base_config", node=config_schema())


def compose_dict(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def compose_config(overrides: list[str]) -> Config:
    """The checked Config that ``python -m mbrl_ai.train <overrides>`` runs (for scripts and tests)."""
    prepare()
    return to_config(compose_dict(overrides))
