"""SAC and MBPO: the SAC update, model training with elites and early stopping, rollout-length
rules, the model buffer, branched rollouts, and both loops end to end (with exact resume)."""

from __future__ import annotations

import importlib
import signal
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from mbrl_ai.algos.mbpo.branched_rollouts import (
    branched_rollouts,
    max_rollout_horizon,
    rollout_horizon,
)
from mbrl_ai.algos.mbpo.config import MBPOConfig
from mbrl_ai.algos.sac.update import SACAgent, sac_update
from mbrl_ai.config import WorldModelConfig
from mbrl_ai.core.buffers import ModelBuffer, ReplayBuffer, Transitions
from mbrl_ai.core.checkpoint import checkpoint_dirs, read_checkpoint
from mbrl_ai.core.errors import RunInterrupted
from mbrl_ai.core.utils import read_jsonl
from mbrl_ai.fit_model import fit_with_early_stopping, member_heldout_mse
from mbrl_ai.logger import RunLogger
from mbrl_ai.modules.world_model import EnsembleWorldModel
from mbrl_ai.train import run
from tests.conftest import compose

BOX1 = gym.spaces.Box(-2.0, 2.0, (1,), dtype=np.float32)


def test_sac_learns_a_one_step_bandit() -> None:
    """Reward −(a − 0.5)², no next state that matters: the policy mean must move to 0.5 (in env
    units 1.0 of [-2, 2]) and the critic must learn the reward."""
    torch.manual_seed(0)
    agent = SACAgent(1, BOX1, [32, 32], "relu", init_alpha=0.05, target_entropy=None)
    opts = [torch.optim.Adam(m.parameters(), lr=3e-3) for m in (agent.actor, agent.critic)]
    alpha_opt = torch.optim.Adam([agent.log_alpha], lr=3e-3)
    obs = torch.zeros(256, 1)
    for _ in range(600):
        actions = torch.rand(256, 1) * 2 - 1
        rewards = -((actions[:, 0] - 0.5) ** 2)
        stats = sac_update(
            agent,
            *opts,
            alpha_opt,
            obs,
            actions,
            rewards,
            obs,
            torch.ones(256),
            0.99,
            0.01,
        )
    assert agent.actor.deterministic(obs[:1]).item() == pytest.approx(0.5, abs=0.1)
    assert agent.actor.mode(obs[:1]).item() == pytest.approx(1.0, abs=0.2)
    q1, _ = agent.critic(torch.zeros(1, 1), torch.tensor([[0.5]]))
    assert q1.item() == pytest.approx(0.0, abs=0.05)
    assert stats.shape == (4,) and torch.isfinite(stats).all()
    # the target critic trails the critic (Polyak), it is not a copy
    assert not torch.equal(agent.critic.q1[0].weight, agent.critic_target.q1[0].weight)


def test_squashed_log_prob_matches_a_reference() -> None:
    torch.manual_seed(1)
    agent = SACAgent(3, gym.spaces.Box(-1.0, 1.0, (2,)), [16], "relu", 1.0, None)
    obs = torch.randn(64, 3)
    torch.manual_seed(5)
    action, log_prob = agent.actor.sample(obs)
    mean, log_std = agent.actor(obs)
    u = torch.atanh(action.clamp(-0.999999, 0.999999))
    normal = torch.distributions.Normal(mean, log_std.exp())
    reference = (normal.log_prob(u) - torch.log(1 - action.pow(2) + 1e-12)).sum(-1)
    torch.testing.assert_close(log_prob, reference, rtol=1e-3, atol=2e-3)


def _linear_replay(n: int, noise_members: bool = False) -> ReplayBuffer:
    rng = np.random.default_rng(0)
    replay = ReplayBuffer(n, 2, (1,), False, 0.2, seed=0)
    obs = rng.normal(size=(n, 2)).astype(np.float32)
    act = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    nxt = (0.9 * obs + 0.1 * act).astype(np.float32)
    replay.add(Transitions(obs, act, obs[:, 0].copy(), nxt, np.zeros(n, dtype=bool)))
    return replay


def _nll(model: EnsembleWorldModel, data: Transitions) -> float:
    """Gaussian NLL of the ensemble on ``data`` (normalised targets, mean over members)."""
    with torch.no_grad():
        obs, act = torch.as_tensor(data.obs), torch.as_tensor(data.actions)
        target = model.normalized_targets(
            obs, torch.as_tensor(data.next_obs), torch.as_tensor(data.rewards)
        )
        mean, logvar, _ = model(obs, act)
        return float(((mean - target) ** 2 * torch.exp(-logvar) + logvar).mean())


def test_model_training_lowers_the_nll_and_picks_elites_by_heldout_mse() -> None:
    torch.manual_seed(0)
    replay = _linear_replay(2000)
    model = EnsembleWorldModel(2, BOX1, 4, [32, 32], "silu", -10.0, 0.5)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    cfg = WorldModelConfig(ensemble_size=4, hidden=[32, 32], batch_size=64)
    holdout = replay.get(replay.indices(holdout=True))
    fit_with_early_stopping(model, opt, replay, cfg, np.random.default_rng(0), 2, 1, 1)
    nll_after_one_epoch = _nll(model, holdout)
    fit = fit_with_early_stopping(model, opt, replay, cfg, np.random.default_rng(1), 2, 30, 3)
    assert _nll(model, holdout) < nll_after_one_epoch - 1.0  # the Gaussian NLL falls
    assert fit["elite_mse"] < 0.02 and fit["update_skipped"] == 0.0
    mse = member_heldout_mse(model, holdout, torch.device("cpu"))
    assert fit["elites"] == sorted(torch.argsort(mse)[:2].tolist())

    # spoil member 1; with a frozen optimiser nothing can recover it: it must not be an elite
    with torch.no_grad():
        model.head.weight[1].add_(1.0)
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)
    refit = fit_with_early_stopping(model, frozen, replay, cfg, np.random.default_rng(2), 3, 1, 1)
    spoiled = member_heldout_mse(model, holdout, torch.device("cpu"))
    assert int(torch.argmax(spoiled)) == 1 and 1 not in refit["elites"]
    assert refit["elites"] == sorted(torch.argsort(spoiled)[:3].tolist())


def test_early_stopping_stops_when_nothing_improves() -> None:
    replay = _linear_replay(400)
    model = EnsembleWorldModel(2, BOX1, 2, [8], "silu", -10.0, 0.5)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # nothing can improve
    cfg = WorldModelConfig(ensemble_size=2, hidden=[8], batch_size=64)
    fit = fit_with_early_stopping(model, opt, replay, cfg, np.random.default_rng(0), 1, 50, 4)
    assert fit["epochs"] == 4.0


@pytest.mark.parametrize(
    ("rule", "iteration", "variance", "expected"),
    [
        ({"rollout_length": "fixed", "horizon": 3}, 7, 5.0, 3),
        ({"rollout_length": "linear", "linear_schedule": [2, 12, 1, 11]}, 1, 0.0, 1),
        ({"rollout_length": "linear", "linear_schedule": [2, 12, 1, 11]}, 7, 0.0, 6),
        ({"rollout_length": "linear", "linear_schedule": [2, 12, 1, 11]}, 40, 0.0, 11),
        (
            {"rollout_length": "adaptive", "max_horizon": 10, "sensitivity": 10.0},
            1,
            0.0,
            10,
        ),
        (
            {"rollout_length": "adaptive", "max_horizon": 10, "sensitivity": 10.0},
            1,
            0.05,
            6,
        ),
        (
            {"rollout_length": "adaptive", "min_horizon": 2, "sensitivity": 10.0},
            1,
            9.0,
            2,
        ),
    ],
)
def test_rollout_length_rules(rule: dict, iteration: int, variance: float, expected: int) -> None:
    cfg = MBPOConfig(**rule)
    assert rollout_horizon(cfg, iteration, variance) == expected
    assert expected <= max_rollout_horizon(cfg)


def test_the_model_buffer_is_rebuilt_when_h_changes_keeping_the_newest() -> None:
    buf = ModelBuffer(max_capacity=100, obs_dim=1, action_dim=1)
    buf.set_capacity(10)

    def batch(values: range) -> Transitions:
        v = np.array(values, dtype=np.float32)
        return Transitions(v[:, None], v[:, None], v, v[:, None], np.zeros(len(v), dtype=bool))

    buf.add(batch(range(0, 8)))
    buf.add(batch(range(8, 14)))  # wraps: 4..13 kept
    assert buf.size == 10 and sorted(buf.get(np.arange(10)).rewards) == list(range(4, 14))
    buf.set_capacity(5)  # H shrank: the 5 newest stay, in order
    assert buf.capacity == 5 and list(buf.get(np.arange(5)).rewards) == [
        9,
        10,
        11,
        12,
        13,
    ]
    buf.set_capacity(30)  # H grew: room for more, nothing lost
    buf.add(batch(range(14, 16)))
    assert buf.size == 7 and list(buf.get(np.arange(7)).rewards) == [
        9,
        10,
        11,
        12,
        13,
        14,
        15,
    ]
    with pytest.raises(ValueError):
        buf.set_capacity(101)


def test_branched_rollouts_start_from_real_states_and_respect_stops() -> None:
    torch.manual_seed(0)
    model = EnsembleWorldModel(2, BOX1, 3, [8], "silu", -10.0, 0.5)
    agent = SACAgent(2, BOX1, [8], "relu", 1.0, None)
    starts = torch.randn(50, 2)

    def never(s: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(s), dtype=torch.bool)

    out, stats = branched_rollouts(model, agent.actor, starts, 4, [0, 2], done_fn=never)
    assert len(out) == 200 and stats["rollout_length_mean"] == 4.0
    np.testing.assert_allclose(out.obs[:50], starts.numpy())  # step 0 is the real start states
    assert np.abs(out.actions).max() <= 1.0
    # a known termination rule ends every rollout at its first step
    out, stats = branched_rollouts(
        model, agent.actor, starts, 4, [0], done_fn=lambda s: s[:, 0] > -1e9
    )
    assert len(out) == 50 and out.terminated.all() and stats["rollout_length_mean"] == 1.0
    # the per-sample stop drops rows once they disagree beyond the threshold
    out, stats = branched_rollouts(
        model, agent.actor, starts, 4, [0, 1, 2], done_fn=never, disagreement_stop=1e-12
    )
    assert len(out) < 200 and stats["rollout_length_mean"] < 4.0


def test_branched_rollouts_never_start_from_a_reset_boundary(tmp_path: Path) -> None:
    """The real replay of a run stores states s, never an episode's final observation: every
    start state the loop can draw satisfies Counter's invariant obs[0] < 5 (its time limit)."""
    cfg = compose(
        "algo=sac",
        "env=tests.fake_envs:ContinuousCounter-v0",
        "total_timesteps=500",
        "sac.learning_starts=500",
        "eval_every=500",
        "eval_episodes=1",
        "logger.progress=off",
    )
    run(cfg, tmp_path)
    _, arrays = read_checkpoint(tmp_path)
    obs, next_obs = arrays["replay/obs"], arrays["replay/next_obs"]
    assert len(obs) == 500 and (obs[:, 0] < 5).all() and (next_obs[:, 0] == obs[:, 0] + 1).all()


SHORT = [
    "env=Pendulum-v1",
    "total_timesteps=1000",
    "eval_every=500",
    "eval_episodes=2",
    "checkpoint_every=500",
    "sac.hidden=[32,32]",
    "sac.learning_starts=250",
    "sac.steps_per_iteration=250",
    "world_model.ensemble_size=3",
    "world_model.hidden=[32,32]",
    "mbpo.elites=2",
    "mbpo.max_epochs=3",
    "mbpo.rollout_batch_size=50",
    "mbpo.max_horizon=4",
    "logger.progress=off",
]


@pytest.mark.integration
@pytest.mark.parametrize("algo", ["sac", "mbpo"])
def test_sac_and_mbpo_resume_exactly(
    algo: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = compose(f"algo={algo}", *SHORT)
    run(cfg, tmp_path / "straight")
    log_iteration = RunLogger.log_iteration

    def stop_at_750(self: RunLogger, steps: int, record: dict) -> None:
        log_iteration(self, steps, record)
        if steps == 750:
            signal.raise_signal(signal.SIGTERM)

    with monkeypatch.context() as m:
        m.setattr(RunLogger, "log_iteration", stop_at_750)
        with pytest.raises(RunInterrupted):
            run(cfg, tmp_path / "resumed")
    run(cfg, tmp_path / "resumed")

    def comparable(path: Path) -> list[dict]:
        return [
            {k: v for k, v in r.items() if not k.endswith("_s") and k != "rss_mb"}
            for r in read_jsonl(path)
        ]

    assert comparable(tmp_path / "resumed" / "metrics.jsonl") == comparable(
        tmp_path / "straight" / "metrics.jsonl"
    )
    a, b = (
        read_checkpoint(tmp_path / "straight")[0],
        read_checkpoint(tmp_path / "resumed")[0],
    )
    for name, sd in a["objects"]["sac"].items():
        assert torch.equal(sd, b["objects"]["sac"][name]), name
    metrics = read_jsonl(tmp_path / "straight" / "metrics.jsonl")
    if algo == "mbpo":
        late = metrics[-1]
        assert 1 <= late["rollout_horizon"] <= 4 and late["model_buffer_size"] > 0
        assert late["model/epochs"] >= 1 and np.isfinite(late["model/elite_mse"])
    assert metrics[-1]["updates"] == 250


@pytest.mark.integration
@pytest.mark.parametrize("algo", ["sac", "mbpo"])
def test_a_stop_mid_iteration_checkpoints_at_once_and_resumes_exactly(
    algo: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SIGTERM during an iteration's updates is honoured after the current real step (not at the
    iteration's end): the checkpoint holds the iteration's progress and the resumed run equals
    the uninterrupted one."""
    cfg = compose(f"algo={algo}", *SHORT)
    run(cfg, tmp_path / "straight")
    module = importlib.import_module(f"mbrl_ai.algos.{algo}")
    update, calls = module.sac_update, [0]

    def update_then_signal(*args: object) -> torch.Tensor:
        calls[0] += 1
        if calls[0] == 400:  # one update at step 250, then one a step: step 649
            signal.raise_signal(signal.SIGTERM)
        return update(*args)

    with monkeypatch.context() as m:
        m.setattr(module, "sac_update", update_then_signal)
        with pytest.raises(RunInterrupted) as stopped:
            run(cfg, tmp_path / "resumed")
    assert stopped.value.env_steps == 649  # the step whose update saw the signal
    assert checkpoint_dirs(tmp_path / "resumed")[-1].name == "step_000000000649"
    run(cfg, tmp_path / "resumed")

    def comparable(path: Path) -> list[dict]:
        return [
            {k: v for k, v in r.items() if not k.endswith("_s") and k != "rss_mb"}
            for r in read_jsonl(path)
        ]

    for name in ("metrics.jsonl", "eval.jsonl"):
        assert comparable(tmp_path / "resumed" / name) == comparable(tmp_path / "straight" / name)
    a, b = read_checkpoint(tmp_path / "straight")[0], read_checkpoint(tmp_path / "resumed")[0]
    for obj in a["objects"]:
        for name, sd in a["objects"][obj].items():
            if isinstance(sd, torch.Tensor):
                assert torch.equal(sd, b["objects"][obj][name]), (obj, name)


def test_sac_refuses_discrete_actions(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    result = run_cli("algo=sac", "env=CartPole-v1", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2 and "does not support action space" in result.stderr


@pytest.mark.parametrize(
    ("env_id", "termination"), [("HalfCheetah-v5", "learned"), ("Hopper-v5", "known")]
)
def test_mbpo_smoke_on_mujoco(tmp_path: Path, env_id: str, termination: str) -> None:
    pytest.importorskip("mujoco")
    cfg = compose(
        "algo=mbpo",
        f"env={env_id}",
        f"world_model.termination={termination}",
        *[a for a in SHORT if not a.startswith(("env=", "total_timesteps", "eval_every"))],
        "total_timesteps=500",
        "eval_every=500",
        "eval_episodes=1",
    )
    result = run(cfg, tmp_path)
    assert result.env_steps == 500 and np.isfinite(result.evals[-1]["mean_return"])
    assert read_jsonl(tmp_path / "metrics.jsonl")[-1]["model_buffer_size"] > 0
