"""Configs: the pseudocode's defaults, every group option composes, presets are valid."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from mbrl_ai.algos import config_schema
from mbrl_ai.config import Config, ConfigError, used_config_dict
from mbrl_ai.train import precheck
from tests.conftest import ROOT, compose

PSEUDOCODE_DEFAULTS = {
    "n_real_steps": 2048,
    "planning_horizon": 5,
    "min_planning_rollouts": 10,
    "max_planning_rollouts": 100,
    "confidence_thresh": 0.05,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "n_epochs": 10,
    "batch_size": 64,
    "beta_init": 0.2,
    "beta_adapt_rate": 0.01,
    "max_grad_norm": 0.5,
    "lr_actor_critic": 3e-4,
    "lr_world_model": 1e-3,
    "lr_curiosity": 3e-4,
}


def test_root_keys_carry_the_pseudocode_defaults() -> None:
    cfg = compose()
    for key, value in PSEUDOCODE_DEFAULTS.items():
        assert getattr(cfg, key) == value, key
    assert cfg.ppo.ent_coef == 0.0 and cfg.ppo.vf_coef == 0.5  # "0.5*value_loss + 0.0*entropy_loss"


def _options() -> list[tuple[str, str]]:
    conf = ROOT / "conf"
    return [
        (g.name, p.stem)
        for g in sorted(conf.iterdir())
        if g.is_dir()
        for p in sorted(g.glob("*.yaml"))
    ]


@pytest.mark.parametrize(("group", "option"), _options())
def test_every_group_option_composes(group: str, option: str) -> None:
    cfg = compose(f"{group}={option}")
    assert isinstance(cfg, Config)


def test_mbppo_defaults_to_the_lean_fit_and_everything_else_to_the_ensemble() -> None:
    def fit(*overrides: str) -> tuple[int, int, bool]:
        wm = compose(*overrides).world_model
        return wm.batch_size, wm.stop_check_every, wm.fused_optimizer

    lean, ensemble = (128, 10, True), (256, 20, False)
    assert fit() == fit("algo=mbppo") == lean
    assert fit("world_model=ensemble") == ensemble  # the command line wins over algo/mbppo.yaml
    assert fit("world_model.batch_size=64")[0] == 64
    for algo in ("mbpo", "mpc", "dyna_dqn"):
        assert fit(f"algo={algo}") == ensemble, algo
    # the MB-PPO presets keep the fit they were measured with
    for preset in ("mbppo_cartpole", "mbppo_cartpole_replay", "mbppo_pendulum_replay"):
        assert fit(f"experiment={preset}")[::2] == (256, False), preset


def test_overrides_reach_nested_nodes() -> None:
    cfg = compose("planning_horizon=3", "ppo.clip_range_vf=0.2", "network.actor_hidden=[32,32]")
    assert cfg.planning_horizon == 3 and cfg.ppo.clip_range_vf == 0.2
    assert cfg.network.actor_hidden == [32, 32]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("+typo=1", "typo"),
        ("+ppo.typo=1", "ppo.typo"),
        ("planning_horizon=0", "planning_horizon"),
        ("gamma=1.5", "gamma"),
        ("network.activation=sigmoid", "network.activation"),
    ],
)
def test_validation_names_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        compose(override)
    assert info.value.key == key


NESTED = [
    "algo",
    "ppo",
    "network",
    "world_model",
    "imagination",
    "curiosity",
    "beta",
    "sac",
    "mbpo",
    "mpc",
    "dyna_q",
    "dyna_dqn",
    "dreamer",
    "logger",
    "tune",
    "env_change",
    "trust",
]


@pytest.mark.parametrize("node", NESTED)
def test_every_nested_node_refuses_unknown_keys(node: str) -> None:
    with pytest.raises(ConfigError) as info:
        compose(f"+{node}.typo=1")
    assert info.value.key == f"{node}.typo"


@pytest.mark.parametrize(
    "override",
    [
        "world_model.train_steps=5",
        "imagination.mode=depth",
        "beta.window=4",
        "ppo.ent_coef=0.01",
        "sac.tau=0.01",
        "mbpo.rollout_length=linear",
    ],
)
def test_the_cli_precheck_accepts_every_nested_key(override: str) -> None:
    key, value = override.split("=")
    # with an algorithm that reads the node (the default, mbppo, reads neither sac nor mbpo)
    algo = ["algo=mbpo", "env=Pendulum-v1"] if key.split(".")[0] in ("sac", "mbpo") else []
    precheck([*algo, override])  # raises ConfigError on a key it does not know
    precheck(["-m", *algo, f"{key}={value},{value}"])


@pytest.mark.parametrize(
    ("algo", "read", "unread"),
    [
        ("ppo", {"gamma", "ppo", "network", "n_real_steps"}, {"world_model", "beta", "sac"}),
        ("sac", {"gamma", "sac"}, {"ppo", "network", "n_real_steps", "world_model", "mbpo"}),
        ("mbpo", {"sac", "mbpo", "world_model"}, {"ppo", "imagination", "curiosity"}),
        ("mbppo", {"ppo", "world_model", "imagination", "beta"}, {"sac", "mbpo", "mpc"}),
        ("mpc", {"mpc", "world_model", "gamma"}, {"ppo", "network", "sac", "imagination"}),
    ],
)
def test_a_runs_saved_config_holds_only_what_its_algorithm_reads(
    algo: str, read: set[str], unread: set[str]
) -> None:
    env = "Pendulum-v1" if algo in ("sac", "mbpo") else "CartPole-v1"
    saved = used_config_dict(compose(f"algo={algo}", f"env={env}"))
    assert read | {"env", "seed", "logger", "algo"} <= set(saved)
    assert not unread & set(saved)


def test_the_nested_node_list_is_complete() -> None:
    hints = typing.get_type_hints(config_schema())
    assert sorted(k for k, t in hints.items() if dataclasses.is_dataclass(t)) == sorted(NESTED)


def test_experiment_presets_exist_for_cartpole_and_pendulum() -> None:
    assert compose("experiment=ppo_cartpole").env == "CartPole-v1"
    assert compose("experiment=ppo_pendulum").env == "Pendulum-v1"
    assert compose("experiment=sac_pendulum").algo.name == "sac"
    mbpo = compose("experiment=mbpo_pendulum")
    assert (mbpo.algo.name, mbpo.env, mbpo.mbpo.rollout_length) == (
        "mbpo",
        "Pendulum-v1",
        "adaptive",
    )
    for algo in ("mbpo", "sac"):  # composing needs no MuJoCo; running does
        cheetah = compose(f"experiment={algo}_halfcheetah")
        assert (cheetah.algo.name, cheetah.env) == (algo, "HalfCheetah-v5")
    assert compose("experiment=mbpo_halfcheetah").world_model.termination == "known"
    assert Path(ROOT / "conf" / "config.yaml").is_file()


def test_config_errors_survive_pickling() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(ConfigError("batch_size", 512, "must be <= 256")))
    assert (
        isinstance(err, ConfigError)
        and str(err) == "invalid config: batch_size=512: must be <= 256"
    )


def test_new_imagination_and_confidence_keys_are_checked() -> None:
    from mbrl_ai.train import compose_config

    for override, key in (
        ("world_model.confidence=oracle", "world_model.confidence"),
        ("world_model.confidence_tolerance=0", "world_model.confidence_tolerance"),
        ("imagination.recent_share=1.5", "imagination.recent_share"),
        ("imagination.mode=stevee", "imagination.mode"),
    ):
        with pytest.raises(ConfigError) as info:
            compose_config([override])
        assert info.value.key == key


def test_mbppo_minibatches_may_exceed_the_real_batch_but_not_the_whole_batch() -> None:
    from mbrl_ai.train import compose_config

    with pytest.raises(ConfigError, match="batch_size=4096: must be <= n_real_steps"):
        compose_config(["algo=ppo", "n_real_steps=2048", "batch_size=4096"])
    cfg = compose_config(["algo=mbppo", "n_real_steps=256", "batch_size=1024"])  # + 100 x 10
    assert cfg.batch_size == 1024
    with pytest.raises(ConfigError, match=r"max_planning_rollouts x horizon \(1000\)"):
        compose_config(["algo=mbppo", "n_real_steps=256", "batch_size=2048"])
