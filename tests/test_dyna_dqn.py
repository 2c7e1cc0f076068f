"""``algo=dyna_dqn``: the DQN update against a hand-computed case, the ε schedule, mixed
minibatches, exact resumption with and without the model, and evaluation from a checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mbrl_ai.algos.dyna_dqn import epsilon
from mbrl_ai.algos.dyna_dqn.config import DynaDQNConfig
from mbrl_ai.algos.dyna_dqn.update import dqn_update
from mbrl_ai.core.buffers import ReplayBuffer, Transitions, sample_mixed
from mbrl_ai.core.checkpoint import read_checkpoint
from mbrl_ai.core.utils import read_jsonl
from mbrl_ai.modules.q_network import QNetwork
from tests.conftest import check_exact_resume, compose, run_cli


def _constant_q(values: list[float]) -> QNetwork:
    """A Q-network that outputs ``values`` for every input (zero weights, bias = values)."""
    q = QNetwork(2, len(values), [4], "relu")
    with torch.no_grad():
        for p in q.parameters():
            p.zero_()
        q.net[-1].bias.copy_(torch.tensor(values))
    return q


@pytest.mark.parametrize("double, expected_next", [(False, 3.0), (True, 1.0)])
def test_dqn_target_plain_and_double(double: bool, expected_next: float) -> None:
    """Online Q prefers action 0, the target prefers action 1: plain DQN bootstraps from the
    target's max (3), double Q from the target's value of the online choice (1)."""
    online, target = _constant_q([2.0, 0.0]), _constant_q([1.0, 3.0])
    opt = torch.optim.SGD(online.parameters(), lr=0.0)  # the loss only, no change
    batch = (
        torch.zeros(2, 2),
        torch.tensor([0, 1]),
        torch.tensor([1.0, 1.0]),
        torch.zeros(2, 2),
        torch.tensor([0.0, 1.0]),  # the second is terminal: target = r
    )
    loss, q_mean = dqn_update(online, target, opt, batch, 0.5, double, 10.0).tolist()
    targets = torch.tensor([1.0 + 0.5 * expected_next, 1.0])
    expected = torch.nn.functional.smooth_l1_loss(torch.tensor([2.0, 0.0]), targets)
    assert loss == pytest.approx(float(expected)) and q_mean == pytest.approx(1.0)


def test_epsilon_falls_linearly_then_stays() -> None:
    d = DynaDQNConfig(exploration_fraction=0.1, exploration_initial_eps=1.0,
                      exploration_final_eps=0.1)  # fmt: skip
    assert epsilon(d, 0, 1000) == 1.0
    assert epsilon(d, 50, 1000) == pytest.approx(0.55)
    assert epsilon(d, 100, 1000) == pytest.approx(0.1) == epsilon(d, 900, 1000)


def test_mixed_batches_take_the_real_share_from_the_replay() -> None:
    def buffer(value: float, n: int) -> ReplayBuffer:
        b = ReplayBuffer(100, 3, (), True, 0.0, 0)
        obs = np.full((n, 3), value, dtype=np.float32)
        b.add(Transitions(obs, np.zeros(n, dtype=np.int64), np.zeros(n, np.float32), obs,
                          np.zeros(n, bool)))  # fmt: skip
        return b

    real, imagined, empty = buffer(1.0, 10), buffer(2.0, 10), buffer(2.0, 0)
    rng, cpu = np.random.default_rng(0), torch.device("cpu")
    obs = sample_mixed(real, imagined, 64, 0.25, rng, cpu)[0]
    assert (obs[:, 0] == 1.0).sum() == 16 and (obs[:, 0] == 2.0).sum() == 48
    assert (sample_mixed(real, empty, 64, 0.25, rng, cpu)[0] == 1.0).all()


SHORT = [
    "algo=dyna_dqn",
    "env=CartPole-v1",
    "total_timesteps=768",
    "eval_every=256",
    "eval_episodes=2",
    "eval_n_envs=2",
    "checkpoint_every=256",
    "dyna_dqn.hidden=[32,32]",
    "dyna_dqn.learning_starts=200",
    "dyna_dqn.train_freq=128",
    "dyna_dqn.gradient_steps=16",
    "world_model.ensemble_size=3",
    "world_model.hidden=[32,32]",
    "world_model.train_steps=20",
    "logger.progress=off",
]


@pytest.mark.parametrize("k", [0, 2])
def test_dyna_dqn_resumes_exactly_and_evaluates(
    k: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = compose(*SHORT, f"dyna_dqn.imagined_per_step={k}")
    check_exact_resume(cfg, tmp_path, 384, monkeypatch)
    a, b = read_checkpoint(tmp_path / "straight")[0], read_checkpoint(tmp_path / "resumed")[0]
    for key, value in a["objects"]["q_net"].items():
        assert torch.equal(value, b["objects"]["q_net"][key]), key
    metrics = read_jsonl(tmp_path / "straight" / "metrics.jsonl")
    assert metrics[-1]["updates"] == 16
    assert ("imagined_transitions" in metrics[-1]) == (k > 0)
    result = run_cli(f"run={tmp_path / 'straight'}", "episodes=1", module="mbrl_ai.evaluate")
    assert result.returncode == 0, result.stderr
    assert "mean return" in result.stdout


@pytest.mark.integration
def test_dyna_dqn_refuses_continuous_actions_and_bad_keys() -> None:
    for bad, key in (
        (["env=Pendulum-v1"], "env"),
        (["dyna_dqn.real_ratio=0"], "dyna_dqn.real_ratio"),
        (["dyna_dqn.imagined_horizon=0"], "dyna_dqn.imagined_horizon"),
        (["dyna_dqn.imagined_actions=greedy"], "dyna_dqn.imagined_actions"),
    ):
        result = run_cli("algo=dyna_dqn", *bad)
        assert result.returncode == 2, (bad, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and key in result.stderr, bad
