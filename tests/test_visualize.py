"""Real vs imagined trajectories and the k-step model error, from a run directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mbrl_ai.analysis.visualize import (
    k_step_errors,
    load_world_model,
    main,
    member_rollouts,
    real_episode,
)
from mbrl_ai.core.checkpoint import CheckpointError
from mbrl_ai.train import run
from tests.conftest import compose


def test_visualize_writes_both_figures_from_an_mbppo_run(tiny: list[str], tmp_path: Path) -> None:
    run(compose(*tiny, "algo=mbppo", "world_model.train_steps=20"), tmp_path / "run")
    assert main([str(tmp_path / "run"), "--out", str(tmp_path / "fig"), "--horizon", "5"]) == 0
    for name in ("trajectories.png", "model_error.png"):
        assert (tmp_path / "fig" / name).read_bytes()[:4] == b"\x89PNG"

    model, _ = load_world_model(tmp_path / "run")
    states, actions = real_episode(tmp_path / "run", seed=0)
    assert len(states) == len(actions) + 1
    paths = member_rollouts(model, states, actions, start=2, horizon=5)
    assert paths.shape == (model.ensemble_size, 6, states.shape[1])
    np.testing.assert_allclose(paths[:, 0], np.broadcast_to(states[2], paths[:, 0].shape))
    # one step of member 0 by hand
    with torch.no_grad():
        s, a = torch.as_tensor(states[2])[None], torch.as_tensor(actions[2])[None]
        mean, _, _ = model(s, a)
        by_hand = s + (mean[0] * model.target_std + model.target_mean)[:, : model.obs_dim]
    np.testing.assert_allclose(paths[0, 1], by_hand[0].numpy(), rtol=1e-5, atol=1e-6)
    errors = k_step_errors(model, states, actions, horizon=5)
    assert errors.shape == (5,) and np.all(errors >= 0)


def test_a_run_without_a_world_model_is_refused(tiny: list[str], tmp_path: Path) -> None:
    run(compose(*tiny, "algo=ppo", "total_timesteps=256"), tmp_path)
    with pytest.raises(CheckpointError, match="no world model"):
        load_world_model(tmp_path)
    assert main([str(tmp_path)]) == 2


@pytest.mark.integration
@pytest.mark.parametrize("algo", ["sac", "mbpo"])
def test_evaluate_and_visualize_read_sac_and_mbpo_runs(
    algo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mbrl_ai import evaluate

    cfg = compose(
        f"experiment={algo}_pendulum",
        "total_timesteps=500",
        "sac.learning_starts=250",
        "sac.updates_per_step=1",
        "mbpo.rollout_batch_size=20",
        "world_model.hidden=[32,32]",
        "eval_every=500",
        "eval_episodes=1",
        "logger.progress=off",
    )
    run(cfg, tmp_path / "run")
    assert evaluate.main([f"run={tmp_path / 'run'}", "episodes=1"]) == 0
    assert f"Pendulum-v1 {algo}: mean return" in capsys.readouterr().out
    code = main([str(tmp_path / "run"), "--out", str(tmp_path / "fig"), "--horizon", "3"])
    if algo == "mbpo":  # the ensemble against the real episode of its SAC policy
        assert code == 0 and (tmp_path / "fig" / "trajectories.png").is_file()
    else:
        assert code == 2  # SAC has no world model
