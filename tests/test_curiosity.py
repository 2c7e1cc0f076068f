"""Curiosity (2.1, 2.3, 2.6): RND, ICM, ensemble disagreement, and how their rewards reach PPO."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import mbrl_ai.gae as gae
import mbrl_ai.trainer as trainer
from mbrl_ai.config import CuriosityConfig
from mbrl_ai.core.checkpoint import read_checkpoint
from mbrl_ai.curiosity import IntrinsicScaler, build_curiosity, update_curiosity
from mbrl_ai.gae import add_intrinsic_advantage
from mbrl_ai.modules.world_model import EnsembleWorldModel
from tests.conftest import compose

DISCRETE = gym.spaces.Discrete(3)


def _module(name: str, **overrides: object):  # noqa: ANN202
    cfg = CuriosityConfig(name=name, warmup_steps=0, **overrides)  # type: ignore[arg-type]
    model = EnsembleWorldModel(4, DISCRETE, 5, [32, 32], "silu", -10.0, 0.5)
    return build_curiosity(cfg, 4, DISCRETE, model, seed=0)


def _train(module, obs, actions, next_obs, steps: int) -> list[float]:  # noqa: ANN001
    opt = torch.optim.Adam(module.trainable_parameters(), lr=1e-3)
    return [
        update_curiosity(module, opt, obs, actions, next_obs, epochs=1, batch_size=64)[
            "curiosity_loss"
        ]
        for _ in range(steps)
    ]


def _seen_states(n: int = 256) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    obs = 0.1 * torch.randn(n, 4, generator=g)
    actions = torch.randint(0, 3, (n,), generator=g)
    next_obs = obs + 0.05 * torch.nn.functional.one_hot(actions, 4)[:, :4].float()
    return obs, actions, next_obs


def test_rnd_target_stays_frozen_and_the_predictor_loss_falls_on_repeated_states() -> None:
    torch.manual_seed(0)
    rnd = _module("rnd")
    obs, actions, next_obs = _seen_states()
    rnd.observe(next_obs)
    target_before = {k: v.clone() for k, v in rnd.target.state_dict().items()}
    losses = _train(rnd, obs, actions, next_obs, steps=100)
    assert losses[-1] < 0.2 * losses[0]
    assert all(not p.requires_grad for p in rnd.target.parameters())
    for k, v in rnd.target.state_dict().items():
        assert torch.equal(v, target_before[k])


@pytest.mark.parametrize("name", ["rnd", "icm"])
def test_intrinsic_reward_is_higher_on_novel_states(name: str) -> None:
    torch.manual_seed(0)
    module = _module(name)
    obs, actions, next_obs = _seen_states()
    module.observe(next_obs)
    _train(module, obs, actions, next_obs, steps=150)
    seen = module.intrinsic_reward(obs, actions, next_obs).mean()
    novel_obs = obs + torch.tensor([0.5, -0.5, 0.5, -0.5])  # five std away from anything seen
    novel = module.intrinsic_reward(novel_obs, actions, novel_obs + (next_obs - obs)).mean()
    assert novel > 3.0 * seen


def test_icm_inverse_model_learns_the_action() -> None:
    torch.manual_seed(0)
    icm = _module("icm", forward_weight=0.2)
    obs, actions, next_obs = _seen_states()
    icm.observe(next_obs)
    _train(icm, obs, actions, next_obs, steps=150)
    with torch.no_grad():
        phi, phi_next = icm._features(obs), icm._features(next_obs)
        predicted = icm.inverse(torch.cat([phi, phi_next], -1)).argmax(-1)
    assert (predicted == actions).float().mean() > 0.9


def test_disagreement_reuses_the_world_model_and_trains_nothing() -> None:
    module = _module("disagreement")
    assert module.trainable_parameters() == []
    obs, actions, next_obs = _seen_states(8)
    r = module.intrinsic_reward(obs, actions, next_obs)
    mean, _, _ = module.model(obs, actions)
    torch.testing.assert_close(r, mean[..., :4].var(0, unbiased=False).mean(-1))


def test_rnd_gives_no_reward_before_its_warm_up() -> None:
    rnd = build_curiosity(CuriosityConfig(warmup_steps=100), 4, DISCRETE, None, seed=0)
    assert not rnd.ready()
    rnd.observe(torch.zeros(99, 4))
    assert not rnd.ready()
    rnd.observe(torch.zeros(1, 4))
    assert rnd.ready()


def test_intrinsic_scaler_divides_by_the_std_of_discounted_returns() -> None:
    scaler = IntrinsicScaler(n_envs=2, gamma=0.5)
    rewards = torch.tensor([[2.0, 0.0], [2.0, 4.0], [2.0, 0.0]])
    scaler.update(rewards)
    # per env, never reset: env 0 → 2, 3, 3.5; env 1 → 0, 4, 2
    returns = np.array([2.0, 0.0, 3.0, 4.0, 3.5, 2.0])
    std = returns.std()  # population std; the 1e-4 prior count barely moves it
    torch.testing.assert_close(scaler.scale(rewards), rewards / std, rtol=1e-3, atol=0.0)
    assert not torch.allclose(scaler.scale(rewards), rewards, rtol=0.05)  # not the identity
    scaler.update(torch.tensor([[0.0, 0.0]]))  # the returns carry on: 1.75 and 1.0
    np.testing.assert_allclose(scaler.returns, [1.75, 1.0])


def test_the_module_build_leaves_the_run_random_stream_alone() -> None:
    torch.manual_seed(123)
    build_curiosity(CuriosityConfig(name="rnd"), 4, DISCRETE, None, seed=0)
    after_build = torch.rand(3)
    torch.manual_seed(123)
    torch.testing.assert_close(torch.rand(3), after_build)


def _actor_weights(out: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(out)[0]["objects"]["actor"]


def test_beta_zero_gives_bit_identical_updates_to_curiosity_none(
    tiny: list[str], tmp_path: Path
) -> None:
    base = [
        *tiny,
        "algo=mbppo",
        "world_model.train_steps=5",
        "curiosity.warmup_steps=0",
    ]
    trainer.train_mbppo(compose(*base, "curiosity=rnd", "beta_init=0"), tmp_path / "rnd")
    trainer.train_mbppo(compose(*base, "curiosity=none"), tmp_path / "none")
    trainer.train_mbppo(compose(*base, "curiosity=rnd", "beta_init=0.5"), tmp_path / "on")
    off, none, on = (_actor_weights(tmp_path / n) for n in ("rnd", "none", "on"))
    assert all(torch.equal(off[k], none[k]) for k in off)
    assert any(not torch.equal(off[k], on[k]) for k in off)  # and curiosity on does change them


def test_ppo_sees_extrinsic_plus_beta_times_intrinsic_reward(
    monkeypatch: pytest.MonkeyPatch, tiny: list[str], tmp_path: Path
) -> None:
    seen: dict[str, list] = {"collected": [], "intrinsic": [], "gae": []}

    def spy(key: str, fn):  # noqa: ANN001, ANN202
        def wrapped(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            out = fn(*args, **kwargs)
            seen[key].append(out if key != "gae" else args[0])
            return out

        return wrapped

    monkeypatch.setattr(trainer, "collect_rollout", spy("collected", trainer.collect_rollout))
    monkeypatch.setattr(
        trainer,
        "real_intrinsic_rewards",
        spy("intrinsic", trainer.real_intrinsic_rewards),
    )
    monkeypatch.setattr(gae, "compute_gae", spy("gae", gae.compute_gae))
    cfg = compose(
        *tiny,
        "algo=mbppo",
        "world_model.train_steps=5",
        "curiosity=rnd",
        "curiosity.warmup_steps=0",
        "beta_init=0.5",
        "beta.window=1000",  # keep β fixed for the check
    )
    trainer.train_mbppo(cfg, tmp_path)
    for (rollout, _), intrinsic, ppo_rewards in zip(
        seen["collected"], seen["intrinsic"], seen["gae"][::2], strict=True
    ):
        assert intrinsic is not None and intrinsic.abs().sum() > 0
        torch.testing.assert_close(ppo_rewards, rollout.rewards + 0.5 * intrinsic)
    metrics = (tmp_path / "metrics.jsonl").read_text()
    for key in (
        "int_reward_real_mean",
        "int_reward_imagined_std",
        "curiosity_loss",
        "beta",
    ):
        assert key in metrics


class _Linear(torch.nn.Module):
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs[..., 0]


def test_intrinsic_gae_is_non_episodic_and_adds_beta_times_its_advantage() -> None:
    obs = torch.tensor([[[1.0]], [[2.0]]])  # [T=2, N=1, 1]: V_int(s) = s
    next_obs = torch.tensor([[[2.0]], [[5.0]]])  # step 1 ends an episode; 5 is its final state
    ends = torch.tensor([[False], [True]])
    adv, ret = add_intrinsic_advantage(
        torch.zeros(2, 1),
        _Linear(),
        obs,
        next_obs,
        torch.ones(2, 1),
        ends,
        0.5,
        0.9,
        1.0,
    )
    # the episode end still bootstraps with V_int(final state) = 5: novelty does not stop there
    d1 = 1 + 0.9 * 5 - 2
    d0 = 1 + 0.9 * 2 - 1
    torch.testing.assert_close(adv, 0.5 * torch.tensor([[d0 + 0.9 * d1], [d1]]))
    torch.testing.assert_close(ret, torch.tensor([[d0 + 0.9 * d1 + 1], [d1 + 2]]))
    unchanged, none = add_intrinsic_advantage(
        torch.ones(2, 1), None, obs, next_obs, torch.ones(2, 1), ends, 0.5, 0.9, 1.0
    )
    assert none is None and torch.equal(unchanged, torch.ones(2, 1))


def test_the_intrinsic_head_is_trained_and_checkpointed(tiny: list[str], tmp_path: Path) -> None:
    cfg = compose(
        *tiny,
        "algo=mbppo",
        "world_model.train_steps=5",
        "curiosity=rnd",
        "curiosity.warmup_steps=0",
        "curiosity.intrinsic_head=true",
    )
    trainer.train_mbppo(cfg, tmp_path)
    assert "int_value_loss" in (tmp_path / "metrics.jsonl").read_text()
    assert "int_critic" in read_checkpoint(tmp_path)[0]["objects"]


@pytest.mark.parametrize("name", ["icm", "disagreement"])
def test_every_module_runs_in_the_trainer(name: str, tiny: list[str], tmp_path: Path) -> None:
    cfg = compose(
        *tiny,
        "algo=mbppo",
        "world_model.train_steps=5",
        f"curiosity={name}",
        "curiosity.warmup_steps=0",
    )
    trainer.train_mbppo(cfg, tmp_path)
    assert "int_reward_real_mean" in (tmp_path / "metrics.jsonl").read_text()


def test_disagreement_needs_the_world_model() -> None:
    from mbrl_ai.config import ConfigError

    with pytest.raises(ConfigError, match="needs the world model"):
        compose("algo=ppo", "curiosity=disagreement")
    with pytest.raises(ConfigError, match="allowed with algo=mbppo"):
        compose("experiment=mbpo_pendulum", "curiosity=disagreement")
