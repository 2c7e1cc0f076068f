"""2.2: the batched ensemble, the replay's fixed held-out split, fitting and confidence."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from mbrl_ai.collect import Rollout
from mbrl_ai.config import WorldModelConfig
from mbrl_ai.core.buffers import ReplayBuffer, Transitions
from mbrl_ai.envs.termination import KNOWN_TERMINATION
from mbrl_ai.fit_model import fit_world_model, open_loop_error
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


@pytest.mark.integration
def test_ensemble_fits_a_known_linear_system_and_becomes_confident() -> None:
    torch.manual_seed(0)
    cfg = WorldModelConfig(train_steps=600, hidden=[64, 64], stop_check_every=0)
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


def test_step_runs_one_uniformly_drawn_member_per_row() -> None:
    torch.manual_seed(0)
    model = _model(gym.spaces.Discrete(3))
    obs, actions = (
        torch.randn(7, 3),
        torch.tensor([0, 1, 2, 0, 1, 2, 0]),
    )  # 7 rows, 5 members
    mean, _, logit = model(obs, actions)
    candidates = obs + (mean * model.target_std + model.target_mean)[..., :3]  # [E, B, 3]
    counts = torch.zeros(5)
    generator = torch.Generator().manual_seed(1)
    for _ in range(400):
        next_obs, reward, done_p, disagreement = model.step(
            obs, actions, sample=False, generator=generator
        )
        assert disagreement is None
        match = (candidates - next_obs).abs().amax(-1) < 1e-5  # [E, B]: which member gave row i
        assert (match.sum(0) == 1).all()  # exactly one member's prediction per row
        member = match.float().argmax(0)
        rows = torch.arange(7)
        torch.testing.assert_close(done_p, torch.sigmoid(logit[member, rows]))
        counts += torch.bincount(member, minlength=5)
    share = counts / counts.sum()
    assert (share - 0.2).abs().max() < 0.03  # members are drawn uniformly
    *_, disagreement = model.step(obs, actions, sample=False, disagreement=True)
    assert disagreement is not None and disagreement.shape == (7,)


def _counting_rollout() -> Rollout:
    """One env, s' = s + a with a = 1, an episode that terminates at its 3rd step, then resets."""
    s = torch.tensor([0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 3.0])
    ends = torch.tensor([False, False, True, False, False, False, False])
    raw_obs = s.reshape(-1, 1, 1).numpy()
    raw_next = (s + 1.0).reshape(-1, 1, 1).numpy()
    zeros = torch.zeros(len(s), 1)
    return Rollout(
        obs=torch.as_tensor(raw_obs),
        actions=torch.ones(len(s), 1, 1),
        log_probs=zeros,
        values=zeros,
        next_values=zeros,
        rewards=zeros,
        ext_rewards=zeros,
        terminated=ends.reshape(-1, 1),
        truncated=torch.zeros(len(s), 1, dtype=torch.bool),
        raw_obs=raw_obs,
        raw_next_obs=raw_next,
    )


class _LinearModel:
    """s' = s + a + bias in environment units, state std 2."""

    obs_dim = 1
    in_std = torch.tensor([2.0, 1.0])

    def __init__(self, bias: float) -> None:
        self.bias = bias

    def mean_step(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return obs + actions + self.bias


def test_open_loop_error_grows_with_k_and_never_crosses_a_reset() -> None:
    rollout = _counting_rollout()
    exact = open_loop_error(_LinearModel(0.0), rollout, horizon=4)  # type: ignore[arg-type]
    # an exact model is exact at every k: no window runs on across the reset after step 2
    model_errors = {k: v for k, v in exact.items() if k.startswith("open_loop_mse_")}
    assert model_errors == {f"open_loop_mse_{k}": 0.0 for k in range(1, 5)}
    # the no-change reference is wrong by the k steps the state moved (actions 1 each step)
    for k in range(1, 5):
        assert exact[f"open_loop_still_mse_{k}"] > 0.0
    biased = open_loop_error(_LinearModel(0.1), rollout, horizon=4)  # type: ignore[arg-type]
    for k in range(1, 5):  # the bias compounds: error k·0.1 in units of the state std 2
        assert biased[f"open_loop_mse_{k}"] == pytest.approx((0.1 * k / 2.0) ** 2, rel=1e-4)


@pytest.mark.parametrize(
    ("env_id", "action"),
    [("CartPole-v1", 1), ("Acrobot-v1", None), ("MountainCar-v0", None)],
)
def test_known_termination_agrees_with_the_environment(env_id: str, action: int | None) -> None:
    rule = KNOWN_TERMINATION[env_id]
    env = gym.make(env_id)
    obs, _ = env.reset(seed=0)
    if env_id == "Acrobot-v1":  # put the tip just above / just below the bar
        env.unwrapped.state = np.array([np.pi, 0.0, 0.0, 0.0])
    if env_id == "MountainCar-v0":  # just short of the goal, moving right
        env.unwrapped.state = np.array([0.49, 0.06])
    seen_end = False
    for _ in range(500):
        obs, _, terminated, truncated, _ = env.step(action if action is not None else 2)
        predicted = bool(rule(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0))[0])
        assert predicted == terminated
        if terminated or truncated:
            seen_end = terminated
            break
    assert seen_end
    env.close()


@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5"])
def test_known_termination_agrees_with_mujoco_locomotion(env_id: str) -> None:
    pytest.importorskip("mujoco")
    rule = KNOWN_TERMINATION[env_id]
    env = gym.make(env_id)
    env.action_space.seed(0)
    ends, steps = 0, 0
    for episode in range(20):  # random actions: Hopper and Walker2d fall within a few dozen steps
        env.reset(seed=episode)
        terminated = truncated = False
        while not (terminated or truncated):
            obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
            predicted = bool(rule(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0))[0])
            assert predicted == terminated, (env_id, episode, obs[:2])
            ends += terminated
            steps += 1
        if steps > 3000:
            break
    env.close()
    assert ends == 0 if env_id == "HalfCheetah-v5" else ends >= 10


def test_open_loop_confidence_reads_the_deepest_error() -> None:
    import math

    from mbrl_ai.fit_model import open_loop_confidence

    errors = {"open_loop_mse_1": 1e-5, "open_loop_mse_2": 4e-4, "open_loop_mse_10": 2e-3}
    assert open_loop_confidence(errors, 1e-3) == math.exp(-2.0)
    assert open_loop_confidence({}, 1e-3) == 0.0  # no track record yet
    assert open_loop_confidence({"open_loop_mse_3": float("nan")}, 1e-3) == 0.0
    assert open_loop_confidence({"open_loop_mse_3": 0.0}, 1e-3) == 1.0


def test_open_loop_skill_compares_with_predicting_no_change() -> None:
    from mbrl_ai.fit_model import open_loop_confidence

    errors = {"open_loop_mse_5": 0.25, "open_loop_still_mse_5": 1.0}
    assert open_loop_confidence(errors, 1e-3, relative=True) == 0.75
    worse = {"open_loop_mse_5": 2.0, "open_loop_still_mse_5": 1.0}
    assert open_loop_confidence(worse, 1e-3, relative=True) == 0.0


def test_the_replay_can_forget_all_but_its_newest_transitions() -> None:
    from mbrl_ai.core.buffers import ReplayBuffer, Transitions

    replay = ReplayBuffer(5, 1, (), True, 0.2, seed=0)
    for start in (0, 4):  # 8 transitions into a ring of 5: rows hold 5, 6, 7, 3, 4
        obs = np.arange(start, start + 4, dtype=np.float32)[:, None]
        replay.add(Transitions(obs, np.zeros(4, np.int64), obs[:, 0], obs + 1, np.zeros(4, bool)))
    flags = replay.holdout[[0, 1, 2]].copy()  # the flags of 5, 6, 7
    replay.keep_newest(3)
    assert replay.size == 3 and replay.obs[:3, 0].tolist() == [5.0, 6.0, 7.0]
    np.testing.assert_array_equal(replay.holdout[:3], flags)
    assert replay.recent_obs(10)[:, 0].tolist() == [5.0, 6.0, 7.0]
    replay.add(Transitions(np.array([[8.0]], np.float32), np.zeros(1, np.int64),
                           np.array([8.0], np.float32), np.array([[9.0]], np.float32),
                           np.zeros(1, bool)))  # fmt: skip
    assert replay.recent_obs(2)[:, 0].tolist() == [7.0, 8.0]


@pytest.mark.integration
def test_a_fit_stops_early_once_held_out_error_stops_falling_and_is_otherwise_unchanged() -> None:
    """The held-out checks draw no random numbers: a fit they never stop ends bit-identical to
    one without them; on a model that has converged, they stop the fit after one check."""
    import copy

    torch.manual_seed(0)
    full = WorldModelConfig(train_steps=200, hidden=[64, 64], stop_check_every=0)
    model = _model(cfg=full)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=full.weight_decay)
    replay = ReplayBuffer(5000, 3, (2,), False, full.holdout_fraction, seed=0)
    replay.add(_linear_system(4000, seed=1))
    assert (
        fit_world_model(model, optimizer, replay, full, np.random.default_rng(0))["train_steps"]
        == 200
    )

    never_stops = WorldModelConfig(
        train_steps=200, hidden=[64, 64], stop_check_every=20, stop_patience=1000
    )
    results = []
    for cfg in (full, never_stops):
        m = copy.deepcopy(model)
        opt = torch.optim.AdamW(m.parameters(), lr=3e-3, weight_decay=cfg.weight_decay)
        opt.load_state_dict(copy.deepcopy(optimizer.state_dict()))  # its own moments
        metrics = fit_world_model(m, opt, replay, cfg, np.random.default_rng(1))
        results.append((metrics, m.state_dict()))
    assert results[0][0]["train_steps"] == results[1][0]["train_steps"] == 200
    for key, value in results[0][1].items():
        assert torch.equal(value, results[1][1][key]), key

    for _ in range(3):  # converge with the default checks: later fits stop early
        stopped = fit_world_model(
            model,
            optimizer,
            replay,
            WorldModelConfig(train_steps=600, hidden=[64, 64]),
            np.random.default_rng(2),
        )
    assert stopped["train_steps"] < 600 and stopped["train_steps"] % 20 == 0
    assert stopped["heldout_state_mse"] < 0.01


def test_next_state_done_classifier_learns_a_condition_on_the_next_state() -> None:
    """world_model.done_input=next_state: the done probability is a function of s' alone, trained
    on real next states, and every prediction path applies it to the state it predicted."""
    torch.manual_seed(0)
    cfg = WorldModelConfig(
        train_steps=600, hidden=[64, 64], stop_check_every=0, done_pos_weight=1.0
    )
    model = EnsembleWorldModel(3, BOX, 5, [64, 64], "silu", -10.0, 0.5, done_on_next_state=True)
    data = _linear_system(4000, seed=1)  # terminal where |s'_0| > 2 (the known rule of s')
    data = Transitions(data.obs, data.actions, data.rewards, data.next_obs,
                       np.abs(data.next_obs[:, 0]) > 2.0)  # fmt: skip
    replay = ReplayBuffer(5000, 3, (2,), False, cfg.holdout_fraction, seed=0)
    replay.add(data)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=cfg.weight_decay)
    metrics = fit_world_model(model, optimizer, replay, cfg, np.random.default_rng(0))
    assert metrics["done_recall"] > 0.7 and metrics["done_precision"] > 0.7

    # the classifier reads the next state only: far outside |s'_0| > 2 it says done, inside not
    probe = torch.tensor([[3.5, 0.0, 0.0], [0.0, 0.0, 0.0], [-3.5, 0.0, 0.0]])
    p = torch.sigmoid(model.next_state_done_logit(probe)).mean(0)
    assert p[0] > 0.9 and p[2] > 0.9 and p[1] < 0.1

    # every prediction path reports the classifier's probability on its own predicted state
    obs, actions = torch.randn(10, 3) * 2, torch.rand(10, 2) * 2 - 1
    members = torch.arange(10) % 5
    nxt, _, done_p, _ = model.predict(obs, actions, members, sample=False)
    expected = torch.sigmoid(model.next_state_done_logit(nxt))[members, torch.arange(10)]
    torch.testing.assert_close(done_p, expected)
    g = torch.Generator().manual_seed(0)
    nxt, _, done_p, _ = model.step(obs, actions, sample=True, generator=g)
    per_member = torch.sigmoid(model.next_state_done_logit(nxt))  # [E, B]
    assert all(bool((per_member[:, i] - done_p[i]).abs().min() < 1e-6) for i in range(10))


def test_the_default_model_has_no_next_state_classifier() -> None:
    """Off by default: no extra parameters, so older checkpoints and random streams stay valid."""
    torch.manual_seed(0)
    plain = _model()
    after_plain = torch.rand(1)
    torch.manual_seed(0)
    c = WorldModelConfig()
    classifier = EnsembleWorldModel(
        3, BOX, c.ensemble_size, c.hidden, c.activation, c.min_logvar, c.max_logvar, True
    )
    assert plain.done_net is None and classifier.done_net is not None
    extra = set(classifier.state_dict()) - set(plain.state_dict())
    assert extra and all(k.startswith("done_net.") for k in extra)
    torch.manual_seed(0)
    _model()
    assert torch.equal(torch.rand(1), after_plain)  # the default draws what it always drew
