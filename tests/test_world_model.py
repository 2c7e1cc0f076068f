"""2.2: the batched ensemble, the replay's fixed held-out split, fitting and confidence."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from mbrl_ai.buffers import ReplayBuffer, Transitions
from mbrl_ai.config import WorldModelConfig
from mbrl_ai.fit_model import fit_world_model
from mbrl_ai.modules.world_model import EnsembleLinear, EnsembleWorldModel

BOX = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)


def _model(
    space: gym.Space = BOX, obs_dim: int = 3, cfg: WorldModelConfig | None = None
) -> EnsembleWorldModel:
    cfg = cfg or WorldModelConfig()
    return EnsembleWorldModel(
        obs_dim,
        space,
        cfg.ensemble_size,
        cfg.hidden,
        cfg.activation,
        cfg.min_logvar,
        cfg.max_logvar,
    )


def test_ensemble_linear_equals_one_linear_per_member() -> None:
    torch.manual_seed(0)
    layer = EnsembleLinear(4, 3, 5)
    x = torch.randn(4, 7, 3)
    out = layer(x)
    for e in range(4):
        torch.testing.assert_close(out[e], x[e] @ layer.weight[e] + layer.bias[e])


def test_predict_uses_the_chosen_member_per_row() -> None:
    torch.manual_seed(0)
    model = _model(gym.spaces.Discrete(3))
    obs, actions = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    members = torch.tensor([0, 1, 2, 3, 4, 0])
    next_obs, reward, done_p, disagreement = model.predict(obs, actions, members, sample=False)
    mean, _, logit = model(obs, actions)
    for i, m in enumerate(members.tolist()):
        raw = mean[m, i] * model.target_std + model.target_mean
        torch.testing.assert_close(next_obs[i], obs[i] + raw[:3])
        torch.testing.assert_close(reward[i], raw[3])
        torch.testing.assert_close(done_p[i], torch.sigmoid(logit[m, i]))
    assert disagreement.shape == (6,) and (disagreement >= 0).all()


def test_replay_keeps_its_holdout_assignment_and_wraps() -> None:
    replay = ReplayBuffer(10, 2, (), True, holdout_fraction=0.3, seed=0)
    batch = Transitions(
        np.arange(16, dtype=np.float32).reshape(8, 2),
        np.zeros(8, dtype=np.int64),
        np.arange(8, dtype=np.float32),
        np.zeros((8, 2), dtype=np.float32),
        np.zeros(8, dtype=bool),
    )
    replay.add(batch)
    held = replay.holdout[:8].copy()
    replay.add(
        Transitions(
            batch.obs[:4],
            batch.actions[:4],
            batch.rewards[:4] + 100,
            batch.next_obs[:4],
            batch.terminated[:4],
        )
    )
    assert replay.size == 10
    np.testing.assert_array_equal(replay.holdout[2:8], held[2:8])  # untouched rows keep their split
    np.testing.assert_array_equal(
        replay.rewards[[8, 9, 0, 1]], [100, 101, 102, 103]
    )  # oldest overwritten
    assert set(replay.indices(True)) | set(replay.indices(False)) == set(range(10))


def _linear_system(n: int, seed: int) -> Transitions:
    """s' = A s + B a, r = c·s, terminal when |s_0| > 2 (rare)."""
    rng = np.random.default_rng(seed)
    A = np.array([[0.9, 0.1, 0.0], [0.0, 0.8, 0.2], [0.1, 0.0, 0.95]])
    B = np.array([[0.5, 0.0], [0.0, 0.3], [0.2, -0.2]])
    c = np.array([1.0, -0.5, 0.25])
    s = rng.normal(size=(n, 3)).astype(np.float32)
    a = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    s2 = (s @ A.T + a @ B.T).astype(np.float32)
    return Transitions(s, a, (s @ c).astype(np.float32), s2, np.abs(s[:, 0]) > 2.0)


def test_ensemble_fits_a_known_linear_system_and_becomes_confident() -> None:
    torch.manual_seed(0)
    cfg = WorldModelConfig(train_steps=600, hidden=[64, 64])
    model = _model(cfg=cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=cfg.weight_decay)
    replay = ReplayBuffer(5000, 3, (2,), False, cfg.holdout_fraction, seed=0)
    replay.add(_linear_system(4000, seed=1))
    rng = np.random.default_rng(0)

    before = fit_world_model(model, optimizer, replay, WorldModelConfig(train_steps=1), rng)
    after = fit_world_model(model, optimizer, replay, cfg, rng)
    assert after["heldout_state_mse"] < 0.01 and after["heldout_reward_mse"] < 0.01
    assert after["model_loss"] < before["model_loss"]
    assert 0.0 < before["confidence"] < after["confidence"] <= 1.0
    assert after["confidence"] > 0.8
    assert after["done_recall"] > 0.5  # the rare terminal states are found despite the imbalance


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confidence_stays_in_unit_interval_on_noise(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    noise = Transitions(
        rng.normal(size=(n, 3)).astype(np.float32),
        rng.integers(0, 3, n),
        rng.normal(size=n).astype(np.float32) * 100,
        rng.normal(size=(n, 3)).astype(np.float32) * 50,
        rng.random(n) < 0.5,
    )
    replay = ReplayBuffer(n, 3, (), True, 0.2, seed=seed)
    replay.add(noise)
    model = _model(gym.spaces.Discrete(3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    metrics = fit_world_model(model, optimizer, replay, WorldModelConfig(train_steps=50), rng)
    assert 0.0 < metrics["confidence"] <= 1.0
    assert metrics["confidence"] < 0.3  # nothing to learn: the model must not claim confidence
