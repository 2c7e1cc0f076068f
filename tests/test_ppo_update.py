"""2.5 by hand: the clipped surrogate, value clipping, per-sample weights, the target-KL stop,
the intrinsic head, and the real + imagined batch PPO trains on."""

from __future__ import annotations

import math

import gymnasium as gym
import pytest
import torch
from torch import nn

from mbrl_ai.imagine import ImaginedRollouts
from mbrl_ai.modules import Actor, Critic
from mbrl_ai.ppo_update import PPOBatch, concat_batches, imagined_to_batch, ppo_update
from tests.conftest import compose

SPACE = gym.spaces.Discrete(3)


def _cfg(*overrides: str):  # noqa: ANN202
    return compose(
        "n_epochs=1", "batch_size=1", "ppo.normalize_advantage=false", "ppo.vf_coef=0.0",
        "ppo.ent_coef=0.0", "max_grad_norm=100", "lr_actor_critic=0.01", *overrides,
    )  # fmt: skip


def _actor() -> Actor:
    torch.manual_seed(0)
    return Actor(2, SPACE, [8], "tanh", ortho_init=True)


class ConstCritic(nn.Module):
    """V(s) = b for every state."""

    def __init__(self, b: float) -> None:
        super().__init__()
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.b.expand(len(obs))


def _batch(actor: Actor, ratio: float, advantage: float, n: int = 1, **extra) -> PPOBatch:  # noqa: ANN003
    obs = torch.linspace(-1, 1, 2 * n).reshape(n, 2)
    actions = torch.zeros(n, dtype=torch.long)
    with torch.no_grad():
        logp, _ = actor.evaluate(obs, actions)
    return PPOBatch(
        obs=obs,
        actions=actions,
        log_probs=logp - math.log(ratio),  # so that π_new / π_old = ratio before the step
        values=torch.zeros(n),
        advantages=torch.full((n,), advantage),
        returns=torch.zeros(n),
        **extra,
    )


def _moved(actor: Actor, ratio: float, advantage: float) -> bool:
    critic = ConstCritic(0.0)
    before = [p.detach().clone() for p in actor.parameters()]
    optimizer = torch.optim.Adam([*actor.parameters(), *critic.parameters()], lr=0.01)
    ppo_update(actor, critic, optimizer, _batch(actor, ratio, advantage), _cfg())
    return any(not torch.equal(a, b) for a, b in zip(before, actor.parameters(), strict=True))


@pytest.mark.parametrize(
    ("ratio", "advantage", "moves"),
    [
        (1.1, 1.0, True),  # inside the clip range: the surrogate's gradient flows
        (1.5, 1.0, False),  # above 1 + ε with A > 0: clipped, no gradient
        (0.5, -1.0, False),  # below 1 − ε with A < 0: clipped, no gradient
        (0.5, 1.0, True),  # below 1 − ε but A > 0: min() keeps the unclipped term
    ],
)
def test_the_surrogate_is_clipped_only_where_it_should_be(
    ratio: float, advantage: float, moves: bool
) -> None:
    assert _moved(_actor(), ratio, advantage) is moves


@pytest.mark.parametrize(
    ("clip_vf", "returns", "expected"),
    [(None, 1.0, 0.25), (0.1, 1.0, 0.81), (0.1, 0.0, 0.25)],
)
def test_value_clipping_takes_the_worse_of_clipped_and_unclipped(
    clip_vf: float | None, returns: float, expected: float
) -> None:
    # V = 0.5, old value 0: clipped to 0.1 with ±0.1
    actor, critic = _actor(), ConstCritic(0.5)
    batch = _batch(actor, 1.0, 0.0)
    batch = PPOBatch(**{**batch.__dict__, "returns": torch.tensor([returns])})
    opt = torch.optim.SGD([*actor.parameters(), *critic.parameters()], lr=0.0)
    extra = [f"ppo.clip_range_vf={clip_vf}"] if clip_vf is not None else []
    out = ppo_update(actor, critic, opt, batch, _cfg("ppo.vf_coef=0.5", *extra))
    assert out["value_loss"] == pytest.approx(expected)


def test_a_zero_weight_sample_does_not_move_the_networks() -> None:
    results = []
    for keep_second in (False, True):
        actor, critic = _actor(), Critic(2, [8], "tanh", True)
        both = _batch(actor, 1.0, 1.0, n=2, weights=torch.tensor([1.0, 0.0]))
        first = PPOBatch(
            **{k: (v[:1] if v is not None else None) for k, v in both.__dict__.items()}
        )
        batch = both if keep_second else first
        params = [*actor.parameters(), *critic.parameters()]
        torch.manual_seed(1)
        ppo_update(actor, critic, torch.optim.Adam(params, lr=0.01), batch,
                   _cfg("batch_size=2", "ppo.vf_coef=0.5"))  # fmt: skip
        results.append([p.detach().clone() for p in params])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b)


def test_the_target_kl_stop_ends_the_update_after_the_step_that_crosses_it() -> None:
    counts = {}
    for target in (None, 1e-6):
        actor, critic = _actor(), Critic(2, [8], "tanh", True)
        batch = _batch(actor, 1.0, 1.0, n=8)
        opt = torch.optim.Adam([*actor.parameters(), *critic.parameters()], lr=0.05)
        extra = [f"ppo.target_kl={target}"] if target is not None else []
        counts[target] = ppo_update(
            actor, critic, opt, batch, _cfg("n_epochs=3", "batch_size=4", *extra)
        )
    assert counts[None]["n_updates"] == 6 and counts[None]["kl_stop"] == 0
    # first minibatch: π = π_old, KL 0; the second sees the first step's change and stops there
    assert counts[1e-6]["n_updates"] == 2 and counts[1e-6]["kl_stop"] == 1


def test_the_intrinsic_head_learns_its_returns_and_only_with_them() -> None:
    for with_targets in (True, False):
        actor, critic, int_critic = (
            _actor(),
            Critic(2, [8], "tanh", True),
            ConstCritic(0.0),
        )
        extra = {"int_returns": torch.full((4,), 3.0)} if with_targets else {}
        batch = _batch(actor, 1.0, 0.0, n=4, **extra)
        params = [*actor.parameters(), *critic.parameters(), *int_critic.parameters()]
        out = ppo_update(actor, critic, torch.optim.Adam(params, lr=0.1), batch,
                         _cfg("ppo.vf_coef=0.5", "n_epochs=5"), int_critic)  # fmt: skip
        if with_targets:
            assert 0.0 < int_critic.b.item() <= 3.0 and out["int_value_loss"] > 0.0
        else:
            assert int_critic.b.item() == 0.0 and "int_value_loss" not in out


def _imagined(valid: torch.Tensor) -> ImaginedRollouts:
    h, r = valid.shape
    z = torch.zeros(h, r)
    obs = torch.arange(h * r * 2, dtype=torch.float32).reshape(h, r, 2)
    return ImaginedRollouts(
        obs=obs, raw_obs=torch.zeros(h + 1, r, 2), actions=torch.zeros(h, r, dtype=torch.long),
        log_probs=z, values=z, next_values=z, rewards=z, model_rewards=z,
        terminated=torch.zeros(h, r, dtype=torch.bool), truncated=torch.zeros(h, r, dtype=torch.bool),
        valid=valid, disagreement=None,
    )  # fmt: skip


def test_real_and_imagined_samples_mix_with_their_weights_and_kinds() -> None:
    valid = torch.tensor([[True, True, False], [True, False, False]])
    imagined = _imagined(valid)
    adv = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    im = imagined_to_batch(imagined, adv, adv + 10, 0.25)
    assert len(im) == 3 and im.advantages.tolist() == [
        0.0,
        1.0,
        3.0,
    ]  # valid steps only
    assert im.weights.tolist() == [0.25] * 3 and not im.is_real.any()
    real = _batch(_actor(), 1.0, 1.0, n=2)
    mixed = concat_batches(real, im)
    assert len(mixed) == 5
    assert mixed.weights.tolist() == [1.0, 1.0, 0.25, 0.25, 0.25]
    assert mixed.is_real.tolist() == [True, True, False, False, False]
    actor, critic = _actor(), Critic(2, [8], "tanh", True)
    opt = torch.optim.Adam([*actor.parameters(), *critic.parameters()], lr=0.01)
    out = ppo_update(actor, critic, opt, mixed, _cfg("batch_size=5"))
    assert out["adv_abs_real"] == pytest.approx(1.0)
    assert out["adv_abs_imagined"] == pytest.approx((0 + 1 + 3) / 3)


@pytest.mark.parametrize(
    ("mode", "real", "imagined", "batch_size", "updates"),
    [
        ("per_sample", 8, 5, 4, 4),  # 13 samples in minibatches of 4: 4, 4, 4, 1
        ("per_real", 8, 5, 4, 2),  # as many as the 8 real samples fill: 2, of 7 and 6
        ("per_real", 8, 0, 4, 2),  # no imagined samples: the same as per_sample
        ("per_real", 3, 9, 4, 1),  # fewer real samples than one minibatch: one of all 12
    ],
)
def test_minibatches_per_real_sample_keep_the_real_batchs_step_count(
    mode: str, real: int, imagined: int, batch_size: int, updates: int
) -> None:
    actor, critic = _actor(), Critic(2, [8], "tanh", True)
    batch = _batch(actor, 1.0, 1.0, n=real)
    if imagined:
        valid = torch.ones(1, imagined, dtype=torch.bool)
        adv = torch.ones(1, imagined)
        batch = concat_batches(batch, imagined_to_batch(_imagined(valid), adv, adv, 1.0))
    opt = torch.optim.Adam([*actor.parameters(), *critic.parameters()], lr=0.01)
    out = ppo_update(
        actor, critic, opt, batch, _cfg(f"batch_size={batch_size}", f"ppo.minibatches={mode}")
    )
    assert out["n_updates"] == updates
