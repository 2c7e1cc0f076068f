"""2.3 and 2.4 for imagined data: rollout count, depth, batching, segments, start states."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from mbrl_ai.collect import collect_rollout, start_collection
from mbrl_ai.config import ImaginationConfig
from mbrl_ai.core.buffers import ReplayBuffer
from mbrl_ai.envs import make_vec_env
from mbrl_ai.gae import compute_gae
from mbrl_ai.imagine import (
    adaptive_horizon,
    imagine_rollouts,
    rollout_count,
    sample_start_states,
    steve_depths,
)
from mbrl_ai.modules import Actor, Critic
from mbrl_ai.modules.world_model import EnsembleWorldModel


def test_rollout_count_is_monotone_in_confidence_and_clamped() -> None:
    grid = np.linspace(0.0, 1.0, 201)
    counts = [rollout_count(c, 0.05, 10, 100) for c in grid]
    assert all(a <= b for a, b in zip(counts, counts[1:], strict=False))
    assert rollout_count(0.0, 0.05, 10, 100) == 10 and rollout_count(0.05, 0.05, 10, 100) == 10
    assert rollout_count(1.0, 0.05, 10, 100) == 100
    assert rollout_count(0.525, 0.05, 10, 100) == 55  # halfway between thresh and 1


def test_adaptive_horizon_follows_seed_003() -> None:
    assert adaptive_horizon(0.0, 1, 10, 8, 5.0) == 8  # no uncertainty: H_base
    assert adaptive_horizon(100.0, 2, 10, 8, 5.0) == 2  # very uncertain: H_min
    assert adaptive_horizon(0.0, 1, 5, 8, 5.0) == 5  # H_base above H_max is clipped
    assert adaptive_horizon(0.1, 1, 10, 10, 5.0) == int(np.floor(10 * np.exp(-0.5)))


class _ScriptedModel:
    """s' = s + 1, r = 1, done when s' = 2; the ensemble agrees perfectly."""

    ensemble_size = 1

    def step(self, obs, actions, sample=True, disagreement=False, generator=None):  # noqa: ANN001, ANN201
        nxt = obs + 1.0
        return (
            nxt,
            torch.ones(len(obs)),
            (nxt[:, 0] == 2.0).float(),
            torch.zeros(len(obs)),
        )


class _StateValue(nn.Module):
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs[:, 0]


def test_imagined_gae_bootstraps_at_the_horizon_and_stops_at_a_predicted_done() -> None:
    actor = Actor(1, gym.spaces.Discrete(2), [4], "tanh", ortho_init=True)
    starts = torch.tensor([[0.0], [10.0]])  # rollout 0 hits done at its 2nd step; rollout 1 runs on
    im = imagine_rollouts(
        actor,
        _StateValue(),
        _ScriptedModel(),
        starts,
        3,
        ImaginationConfig(mode="fixed"),
    )
    assert im.valid.tolist() == [[True, True], [True, True], [False, True]]
    assert im.terminated.tolist() == [[False, False], [True, False], [False, False]]
    assert im.truncated.tolist() == [[False, False], [False, False], [False, True]]
    adv, _ = compute_gae(
        im.rewards, im.values, im.next_values, im.terminated, im.truncated, 0.9, 0.8
    )
    # rollout 0: δ1 = 1 − V(1) (terminal), δ0 = 1 + 0.9·V(1) − V(0)
    assert adv[1, 0].item() == pytest.approx(0.0)
    assert adv[0, 0].item() == pytest.approx(1.9)
    # rollout 1: cut by the horizon, bootstrapped with V(ŝ_3) = 13
    d2, d1, d0 = 1 + 0.9 * 13 - 12, 1 + 0.9 * 12 - 11, 1 + 0.9 * 11 - 10
    assert adv[2, 1].item() == pytest.approx(d2)
    assert adv[1, 1].item() == pytest.approx(d1 + 0.72 * d2)
    assert adv[0, 1].item() == pytest.approx(d0 + 0.72 * (d1 + 0.72 * d2))


def test_a_known_termination_rule_replaces_the_done_head() -> None:
    actor = Actor(1, gym.spaces.Discrete(2), [4], "tanh", ortho_init=True)
    starts = torch.tensor([[0.0], [10.0]])
    im = imagine_rollouts(
        actor,
        _StateValue(),
        _ScriptedModel(),  # its done head says s' = 2; the rule says s' = 12
        starts,
        3,
        ImaginationConfig(mode="fixed"),
        done_fn=lambda s: s[:, 0] == 12.0,
    )
    assert im.terminated.tolist() == [[False, False], [False, True], [False, False]]
    assert im.valid.tolist() == [[True, True], [True, True], [True, False]]


def test_batched_imagination_equals_a_step_by_step_reference() -> None:
    torch.manual_seed(0)
    space = gym.spaces.Discrete(2)
    actor = Actor(4, space, [16], "tanh", ortho_init=True)
    critic = Critic(4, [16], "tanh", ortho_init=True)
    model = EnsembleWorldModel(4, space, 1, [32], "silu", -10.0, 0.5)
    with torch.no_grad():  # make predicted dones occasional: some rollouts end early, some run on
        model.head.weight[..., -1] *= 20.0
        model.head.bias[..., -1] = -2.0
    cfg = ImaginationConfig(mode="fixed", sample=False)
    starts = torch.randn(16, 4)
    im = imagine_rollouts(actor, critic, model, starts, 4, cfg)
    lengths = im.valid.sum(0)
    assert lengths.max() == 4 and lengths.min() < 4  # both kinds of rollout are exercised
    for i in range(16):  # one rollout at a time, one state at a time
        s = starts[i : i + 1]
        for h in range(4):
            if not im.valid[h, i]:
                break
            a = im.actions[h, i : i + 1]
            torch.testing.assert_close(im.obs[h, i : i + 1], s)
            with torch.no_grad():
                logp, _ = actor.evaluate(s, a)
                torch.testing.assert_close(im.log_probs[h, i], logp[0])
                torch.testing.assert_close(im.values[h, i], critic(s)[0])
                s_next, r, done_p, _ = model.predict(
                    s, a, torch.zeros(1, dtype=torch.long), sample=False
                )
            torch.testing.assert_close(im.model_rewards[h, i], r[0])
            assert bool(im.terminated[h, i]) == bool(done_p[0] > 0.5)
            s = s_next


def test_start_states_never_come_from_a_reset_boundary() -> None:
    import tests.fake_envs  # noqa: F401

    envs = make_vec_env("tests.fake_envs:CounterTerm-v0", 2, seed=0)  # terminates at step 4
    actor = Actor(2, gym.spaces.Discrete(2), [8], "tanh", True)
    critic = Critic(2, [8], "tanh", True)
    rollout, _ = collect_rollout(envs, actor, critic, start_collection(envs, 0), 30, 0.99)
    envs.close()
    replay = ReplayBuffer(1000, 2, (), True, 0.1, seed=0)
    replay.add(rollout.transitions())
    starts = sample_start_states(replay.recent_obs(40), 500, np.random.default_rng(0))
    assert set(starts[:, 0].tolist()) <= {
        0.0,
        1.0,
        2.0,
        3.0,
    }  # never the terminal state 4
    stored = {tuple(o) for o in replay.obs[: replay.size].tolist()}
    assert all(tuple(s) in stored for s in starts.tolist())


class _LinearEnsemble(EnsembleWorldModel):
    """Members predict Δs = 0 and r = 0, except member 1, whose Δs on the first dimension is
    ``spread`` times the state's first coordinate: disagreement grows with |s_0|."""

    def __init__(self, spread: float) -> None:
        super().__init__(1, gym.spaces.Discrete(2), 2, [4], "silu", -10.0, 0.5)
        self.spread = spread

    def forward(self, obs, actions):  # noqa: ANN001, ANN201
        mean = torch.zeros(2, obs.shape[0], 2)
        mean[1, :, 0] = self.spread * obs[:, 0]
        return mean, torch.zeros_like(mean), torch.zeros(2, obs.shape[0])


def _steve(spread: float, value_var: float, states: torch.Tensor) -> torch.Tensor:
    steps, n = states.shape[0] - 1, states.shape[1]
    valid = torch.ones(steps, n, dtype=torch.bool)
    return steve_depths(
        _LinearEnsemble(spread), lambda s: s[..., 0], lambda r: r, states,
        torch.zeros(steps, n, dtype=torch.long), valid, torch.zeros_like(valid), value_var, 0.9, 1,
    )  # fmt: skip


def test_steve_depth_is_the_least_variance_horizon() -> None:
    # u = Var_members(γ·V(s')) = (γ·spread·s_0 / 2)² per step; σ²_h = γ^2h·σ²_V + Σ γ^2i·u_i
    # rollout 0 drifts away (its disagreement grows with h); rollout 1 stays where members agree
    states = torch.zeros(7, 3, 1)
    states[:, 0, 0] = 0.3 * torch.arange(7.0)
    depth = _steve(spread=1.0, value_var=1.0, states=states)
    u = [(0.9 * 1.0 * 0.3 * h / 2) ** 2 for h in range(6)]  # member 1 moves s_h by spread·s_h
    var = [0.81**h + sum(0.81**i * u[i] for i in range(h)) for h in range(7)]
    assert depth[0] == int(np.argmin(var)) and 0 < depth[0] < 6
    assert depth[1] == 6
    # a poorer critic (larger σ²_V) makes deeper model targets worth their variance
    assert _steve(1.0, 100.0, states)[0] == 6
    # a model that disagrees a lot is cut to min_horizon
    assert _steve(20.0, 1.0, states)[0] == 1


def test_steve_mode_cuts_rollouts_and_bootstraps_at_the_cut() -> None:
    torch.manual_seed(0)
    space = gym.spaces.Discrete(2)
    actor = Actor(4, space, [16], "tanh", ortho_init=True)
    critic = Critic(4, [16], "tanh", ortho_init=True)
    model = EnsembleWorldModel(4, space, 5, [32], "silu", -10.0, 0.5)
    with torch.no_grad():
        model.head.bias[..., -1] = -20.0  # no predicted dones
    cfg = ImaginationConfig(mode="steve", sample=False, max_horizon=8)
    starts = torch.randn(64, 4)
    deep = imagine_rollouts(actor, critic, model, starts, 3, cfg, value_var=1e6, gamma=0.99)
    assert bool((deep.valid.sum(0) == 8).all())  # a hopeless critic: the whole max_horizon
    cut = imagine_rollouts(actor, critic, model, starts, 3, cfg, value_var=1e-8, gamma=0.99)
    lengths = cut.valid.sum(0)
    assert bool((lengths == 1).all())  # a perfect critic: no model step is worth its variance
    assert bool(cut.truncated[0].all()) and not bool(cut.truncated[1:].any())


def test_a_share_of_start_states_comes_from_the_newest_batch() -> None:
    old, new = np.zeros((100, 2)), np.ones((10, 2))
    rng = np.random.default_rng(0)
    starts = sample_start_states(old, 40, rng, new, 0.25)
    assert starts.shape == (40, 2) and starts[:, 0].sum() == 10
    # share 0 draws exactly as without a newest batch
    a = sample_start_states(old + np.arange(100)[:, None], 7, np.random.default_rng(3), new, 0.0)
    b = sample_start_states(old + np.arange(100)[:, None], 7, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
