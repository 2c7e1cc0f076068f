"""The W&B logger in offline mode: a run is written and holds the config, group and metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from mbrl_ai.core.utils import read_jsonl
from mbrl_ai.logger import wandb_group
from tests.conftest import compose, run_cli


@pytest.mark.integration
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
    # the group: the command line's overrides without the seed or the logger's, ':' for '='
    group = read_jsonl(tmp_path / "eval.jsonl")[0]["group"]
    assert (
        group
        == "batch_size:64,eval_episodes:2,eval_every:256,n_epochs:2,n_real_steps:256,total_timesteps:512"
    )
    assert group.encode() in data and b"mbppo" in data  # job_type


def test_group_ignores_the_seed_but_not_hyperparameters() -> None:
    """Without logger.group (runs started from Python), the group is a digest of the config."""
    assert wandb_group(compose("seed=0")) == wandb_group(compose("seed=7"))
    assert wandb_group(compose("seed=0")) != wandb_group(compose("seed=0", "gamma=0.9"))
    assert wandb_group(compose("seed=0", "checkpoint_every=7")) == wandb_group(compose("seed=0"))
    assert wandb_group(compose("logger.group=mine")) == "mine"
