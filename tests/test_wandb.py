"""The W&B logger in offline mode: a run is written and holds the config, group and metrics."""

from __future__ import annotations

from pathlib import Path

from mbrl_ai.logger import wandb_group
from tests.conftest import compose, run_cli


def test_offline_run_is_written_and_holds_the_config(tiny: list[str], tmp_path: Path) -> None:
    result = run_cli(*tiny, "logger=wandb", "logger.mode=offline", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    runs = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    data = runs[0].read_bytes()
    for key in (
        "n_real_steps",
        "planning_horizon",
        "lr_actor_critic",
        "policy_loss",
        "mean_real_reward",
    ):
        assert key.encode() in data, key
    assert wandb_group(compose(*tiny, "logger=wandb")).encode() in data


def test_group_ignores_the_seed_but_not_hyperparameters() -> None:
    assert wandb_group(compose("seed=0")) == wandb_group(compose("seed=7"))
    assert wandb_group(compose("seed=0")) != wandb_group(compose("seed=0", "gamma=0.9"))
