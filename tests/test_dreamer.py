"""``algo=dreamer``: the RSSM's distributions and KL, λ-returns, continuation masking, two-hot
values, the sequence replay's episode boundaries, the recurrent policy, exact resume, CLI
refusals, and a learning run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributions import Categorical, kl_divergence

from mbrl_ai.algos.dreamer import build_agent, epsilon_greedy, load_dreamer_policy, open_loop
from mbrl_ai.algos.dreamer.behavior import (
    action_values,
    imagined_weights,
    lambda_returns,
    polyak,
    replay_returns,
)
from mbrl_ai.algos.dreamer.config import DreamerConfig
from mbrl_ai.algos.dreamer.dist import TwoHot, categorical_kl, symexp, symlog
from mbrl_ai.algos.dreamer.policy import DreamerPolicy
from mbrl_ai.algos.dreamer.replay import SequenceReplay
from mbrl_ai.algos.dreamer.world_model import RSSM, Latent
from mbrl_ai.analysis.visualize import real_episode, visualize
from mbrl_ai.core.checkpoint import read_checkpoint
from mbrl_ai.core.utils import read_jsonl
from mbrl_ai.envs import inspect_env
from mbrl_ai.train import run as train
from tests.conftest import check_exact_resume, comparable, compose, run_cli

TINY = DreamerConfig(deter=16, latents=4, classes=5, hidden=16, bins=15)


def test_rssm_shapes_and_kl_against_torch() -> None:
    torch.manual_seed(0)
    rssm = RSSM(TINY, embed_dim=7, action_dim=3)
    b, t = 2, 6
    seen = rssm.observe(torch.randn(b, t, 7), torch.randn(b, t, 3), torch.zeros(b, t, dtype=bool))
    assert seen.latent.h.shape == (b, t, 16)
    assert seen.latent.z.shape == seen.post.shape == seen.prior.shape == (b, t, 4, 5)
    assert torch.allclose(seen.post.sum(-1), torch.ones(b, t, 4))
    assert ((seen.latent.z == 0) | (seen.latent.z == 1)).all()  # one-hot samples
    assert (seen.latent.z.sum(-1) == 1).all()
    assert seen.post.min() >= TINY.unimix / TINY.classes - 1e-7  # the uniform mix
    reference = kl_divergence(Categorical(probs=seen.post), Categorical(probs=seen.prior)).sum(-1)
    assert torch.allclose(categorical_kl(seen.post, seen.prior), reference, atol=1e-5)
    assert categorical_kl(seen.post, seen.post).abs().max() < 1e-6


def test_is_first_resets_the_state() -> None:
    """Two histories that differ only before a reset give the same states from the reset on."""
    torch.manual_seed(0)
    rssm = RSSM(TINY, embed_dim=7, action_dim=3)
    embed, actions = torch.randn(2, 8, 7), torch.randn(2, 8, 3)
    embed[1, 4:], actions[1, 4:] = embed[0, 4:], actions[0, 4:]
    is_first = torch.zeros(2, 8, dtype=bool)
    is_first[:, 4] = True
    torch.manual_seed(1)
    a = rssm.observe(embed[:1], actions[:1], is_first[:1])
    torch.manual_seed(1)
    b = rssm.observe(embed[1:], actions[1:], is_first[1:])
    assert not torch.allclose(a.latent.h[:, 3], b.latent.h[:, 3])
    assert torch.allclose(a.latent.h[:, 4:], b.latent.h[:, 4:])
    assert torch.equal(a.latent.z[:, 4:], b.latent.z[:, 4:])


def test_lambda_returns_by_hand() -> None:
    rewards = torch.tensor([[1.0], [2.0]])
    discounts = torch.tensor([[0.9], [0.5]])
    values = torch.tensor([[10.0], [20.0], [30.0]])
    # R_1 = 2 + 0.5·30 = 17;  R_0 = 1 + 0.9·(0.5·20 + 0.5·17) = 17.65
    out = lambda_returns(rewards, discounts, values, lam=0.5)
    assert torch.allclose(out[:, 0], torch.tensor([17.65, 17.0]))
    # λ = 1: discounted rewards plus the discounted last value; λ = 0: one-step TD targets
    assert torch.allclose(lambda_returns(rewards, discounts, values, 1.0)[0, 0],
                          torch.tensor(1 + 0.9 * (2 + 0.5 * 30)))  # fmt: skip
    assert torch.allclose(lambda_returns(rewards, discounts, values, 0.0)[:, 0],
                          torch.tensor([1 + 0.9 * 20, 2 + 0.5 * 30]))  # fmt: skip


def test_continuation_masks_imagined_returns_and_weights() -> None:
    """Where the continuation head says the episode ended, nothing after counts."""
    h, gamma = 4, 0.9
    rewards = torch.tensor([[1.0], [5.0], [7.0], [9.0]])
    cont = torch.tensor([[1.0], [0.0], [1.0], [1.0]])  # the episode ends at imagined step 2
    values = torch.full((h + 1, 1), 100.0)
    out = lambda_returns(rewards, gamma * cont, values, lam=0.95)
    assert out[1, 0] == 5.0  # the reward of reaching the end, and no bootstrap past it
    assert torch.isclose(out[0, 0], torch.tensor(1.0 + gamma * (0.05 * 100.0 + 0.95 * 5.0)))
    w = imagined_weights(cont, torch.tensor([1.0]), gamma)
    assert torch.allclose(w[:, 0], torch.tensor([1.0, gamma, 0.0, 0.0]))
    assert (imagined_weights(cont, torch.tensor([0.0]), gamma) == 0).all()  # a terminal start


def test_replay_returns_by_hand_and_at_episode_ends() -> None:
    """λ-returns over replayed real steps: stop at a terminal step, bootstrap where a time limit
    cut the episode, and mask what has no target."""
    gamma, lam = 0.9, 0.5
    rewards = torch.tensor([[0.0, 1.0, 2.0, 3.0]] * 3)
    values = torch.tensor([[10.0, 20.0, 30.0, 40.0]] * 3)
    terminal = torch.tensor([[0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    first = torch.tensor([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1]], dtype=torch.bool)
    out, mask = replay_returns(rewards, terminal, first, values, gamma, lam)
    r2 = 3 + gamma * 40  # one sequence, no episode end
    r1 = 2 + gamma * (0.5 * 30 + 0.5 * r2)
    assert torch.allclose(out[0], torch.tensor([1 + gamma * (0.5 * 20 + 0.5 * r1), r1, r2, 40]))
    # step 2 is terminal: step 1's return is the reward of reaching it, nothing after
    assert torch.isclose(out[1, 1], torch.tensor(2.0))
    # step 3 begins another episode (a time limit ended the one before): step 2 bootstraps
    # from its own value, and step 1 from step 2's
    assert out[2, 2] == 30.0 and torch.isclose(out[2, 1], torch.tensor(2 + gamma * 30.0))
    assert mask.tolist() == [[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 0, 0]]


def test_two_hot_round_trip() -> None:
    dist = TwoHot(255)
    x = torch.tensor([-300.0, -1.5, 0.0, 0.3, 42.0, 1e3])
    weights = dist.encode(x)
    assert torch.allclose(weights.sum(-1), torch.ones(len(x)))
    assert ((weights > 0).sum(-1) <= 2).all()
    assert torch.allclose(dist.mean(weights.clamp_min(1e-30).log()), x, rtol=1e-4, atol=1e-6)
    assert torch.allclose(symexp(symlog(x)), x, rtol=1e-5)
    assert dist.mean(torch.zeros(3, 255)).abs().max() < 1e-4  # a zero-initialised critic: v = 0


def test_sequence_replay_never_mixes_episodes_without_a_reset_flag() -> None:
    """Steps are (episode id, step in episode): inside every chunk, a change of episode comes
    with is_first, first steps carry no action or reward, and steps are consecutive."""
    rng = np.random.default_rng(0)
    replay = SequenceReplay(capacity=97, n_envs=2, obs_dim=2, action_dim=1)
    episode = [0, 1000]
    replay.start_episodes(np.array([[0.0, 0.0], [1000.0, 0.0]], dtype=np.float32))
    step = [0, 0]
    for _ in range(400):  # wraps the streams several times
        for e in range(2):
            step[e] += 1
            end = rng.random() < 0.1
            replay.add(e, np.array([episode[e], step[e]], np.float32), np.ones(1), 1.0, False, end)
            if end:
                episode[e] += 1
                step[e] = 0
                replay.start_episodes(np.array([[episode[0], 0.0], [episode[1], 0.0]],
                                               dtype=np.float32), np.array([e]))  # fmt: skip
    chunks = replay.sample(500, 16, rng)
    ids, steps = chunks["obs"][..., 0], chunks["obs"][..., 1]
    new_episode = ids[:, 1:] != ids[:, :-1]
    assert new_episode.any()
    assert (chunks["is_first"][:, 1:][new_episode]).all()
    assert (chunks["is_first"] == (steps == 0)).all()
    assert (chunks["actions"][chunks["is_first"]] == 0).all()
    assert (chunks["rewards"][chunks["is_first"]] == 0).all()
    same = ~new_episode
    assert (steps[:, 1:][same] == steps[:, :-1][same] + 1).all()  # no jump across the write head
    assert (ids[:, 1:] >= ids[:, :-1]).all()
    assert set(np.unique(ids // 1000)) == {0, 1}  # both streams are read


def test_policy_scales_box_actions_and_carries_its_state() -> None:
    info = inspect_env("Pendulum-v1", {})
    policy = DreamerPolicy(build_agent(TINY, info), info, seed=0)
    assert torch.allclose(
        policy.env_actions(torch.tensor([[1.0], [-0.5]])), torch.tensor([[2.0], [-1.0]])
    )
    obs = torch.randn(3, 3)
    policy.start(3)
    first = policy.mode(obs)
    policy.start(3)
    assert torch.equal(policy.mode(obs), first)  # start reseeds: evaluations repeat
    second = policy.mode(obs)
    assert not torch.equal(policy.state.h, torch.zeros_like(policy.state.h))
    policy.reset_state(np.array([True, False, False]))
    assert policy.is_first.tolist() == [True, False, False]
    assert second.shape == (3, 1) and (second.abs() <= 2.0).all()


def test_a_policy_with_a_context_sees_only_its_last_k_steps_of_the_episode() -> None:
    info = inspect_env("CartPole-v1", {})
    agent = build_agent(TINY, info)
    with torch.no_grad():  # sharp posteriors: the latent samples follow the observations
        for p in agent.wm.rssm.post_net.parameters():
            p.mul_(50.0)
    tail = [torch.randn(2, 4) for _ in range(3)]
    heads = [[torch.randn(2, 4) for _ in range(4)] for _ in range(2)]
    one_hot = torch.nn.functional.one_hot(torch.tensor([0, 1]), 2).float()

    def final_state(context: int, head: list[torch.Tensor], reset: bool) -> torch.Tensor:
        """The state after ``head`` then ``tail`` (env 0's episode restarting with ``tail``)."""
        policy = DreamerPolicy(agent, info, seed=0, context=context)
        policy.start(2)
        for i, obs in enumerate(head + tail):
            if reset and i == len(head):
                policy.reset_state(np.array([True, False]))
            if i == len(head) + len(tail) - 1:
                policy.generator.manual_seed(7)  # the same draws for the last filtering
            policy.act(obs, explore=False)
            policy.commit(one_hot)
        return torch.cat([policy.state.h, policy.state.z.flatten(1)], -1)

    # two different pasts, the same last 3 steps: the same state with a context of 3 ...
    torch.testing.assert_close(final_state(3, heads[0], False), final_state(3, heads[1], False))
    # ... but not without a context, where the past carries through
    assert not torch.equal(final_state(0, heads[0], False)[1], final_state(0, heads[1], False)[1])
    # a context of 5: env 1 sees two steps of the differing pasts; env 0's episode began 3 steps
    # ago, so its window holds only those
    a, b = final_state(5, heads[0], True), final_state(5, heads[1], True)
    torch.testing.assert_close(a[0], b[0])
    assert not torch.equal(a[1], b[1])


def test_epsilon_greedy_swaps_in_random_actions_at_its_rate() -> None:
    info = inspect_env("CartPole-v1", {})
    policy = DreamerPolicy(build_agent(TINY, info), info, seed=0)
    policy.start(4000)
    greedy = torch.nn.functional.one_hot(torch.zeros(4000, dtype=torch.long), 2).float()
    rng = np.random.default_rng(0)
    assert torch.equal(epsilon_greedy(policy, greedy, 0.0, rng), greedy)
    mixed = epsilon_greedy(policy, greedy, 0.4, rng)
    assert (mixed.sum(-1) == 1).all()
    # a random action is the other one half the time: 0.4 × 0.5 of the steps change
    assert abs(float((mixed[:, 1] == 1).float().mean()) - 0.2) < 0.03


def test_the_averaged_actor_acts_and_follows_the_actor_by_tau() -> None:
    info = inspect_env("CartPole-v1", {})
    assert build_agent(TINY, info).averaged_actor is None  # off by default: the actor acts
    agent = build_agent(replace(TINY, actor_ema=0.25), info)
    assert agent.acting_actor() is agent.averaged_actor
    averaged = agent.averaged_actor
    assert averaged is not None and not any(p.requires_grad for p in averaged.parameters())
    before = [p.clone() for p in averaged.parameters()]
    with torch.no_grad():
        for p in agent.actor.parameters():
            p.add_(1.0)
    polyak(averaged, agent.actor, 0.25)
    for old, new, online in zip(
        before, averaged.parameters(), agent.actor.parameters(), strict=True
    ):
        torch.testing.assert_close(new, old + 0.25 * (online - old))
    # acting reads the averaged actor: a policy built on it picks its mode
    policy = DreamerPolicy(agent, info, seed=0)
    policy.start(2)
    obs = torch.randn(2, 4)
    action = policy.act(obs, explore=False)
    assert torch.equal(action, averaged(policy.state.feat()).mode())


def test_action_values_score_every_action_one_imagined_step_ahead() -> None:
    """Q(s, a) = r(s') + γ·c(s')·v_slow(s'), s' one imagined step from s with a, for every
    state of an [H, N] batch and every action (a prior made deterministic so that the batched
    values can be checked one state and one action at a time)."""
    torch.manual_seed(0)
    info = inspect_env("CartPole-v1", {})
    agent = build_agent(replace(TINY, unimix=0.0), info)
    head = agent.wm.rssm.prior_net[-1]
    with torch.no_grad():  # every latent's prior puts all its mass on class 0
        head.weight.zero_()
        head.bias.copy_(torch.tensor([50.0] + [-50.0] * (TINY.classes - 1)).repeat(TINY.latents))
        for p in agent.slow_critic.parameters():  # a critic that is not zero everywhere
            p.normal_(0.0, 0.3)
    h = torch.randn(3, 5, TINY.deter)
    z = torch.nn.functional.one_hot(torch.randint(0, TINY.classes, (3, 5, TINY.latents)),
                                     TINY.classes).float()  # fmt: skip
    q = action_values(agent, Latent(h, z), gamma=0.9)
    assert q.shape == (3, 5, 2)
    wm = agent.wm
    for t, n, a in np.ndindex(3, 5, 2):
        action = torch.nn.functional.one_hot(torch.tensor([a]), 2).float()
        feat = wm.rssm.img_step(Latent(h[t, n][None], z[t, n][None]), action).feat()
        with torch.no_grad():
            want = wm.predicted_reward(feat) + 0.9 * wm.continuation(feat) * (
                agent.slow_critic.value(feat)
            )
        torch.testing.assert_close(q[t, n, a], want[0])
    assert not torch.allclose(q[..., 0], q[..., 1])  # the two actions lead to different states


SHORT = [
    "algo=dreamer",
    "total_timesteps=600",
    "eval_every=200",
    "eval_episodes=2",
    "eval_n_envs=2",
    "checkpoint_every=200",
    "dreamer.deter=16",
    "dreamer.latents=4",
    "dreamer.classes=4",
    "dreamer.hidden=16",
    "dreamer.bins=15",
    "dreamer.batch_size=4",
    "dreamer.seq_len=8",
    "dreamer.horizon=5",
    "dreamer.imagine_starts=8",
    "dreamer.learning_starts=200",
    "dreamer.steps_per_iteration=100",
    "dreamer.train_ratio=0.05",
    "logger.progress=off",
]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("env", "explore"),
    [
        ("CartPole-v1", []),
        (
            "CartPole-v1",
            [
                "dreamer.explore=mode",
                "dreamer.explore_epsilon=0.2",
                "dreamer.replay_critic=0.3",
                "dreamer.actor_ema=0.1",
                "dreamer.act_context=4",
                "dreamer.actor_grad=all_actions",
            ],
        ),
        ("Pendulum-v1", []),
    ],
)
def test_dreamer_resumes_exactly_and_evaluates(
    env: str, explore: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = compose(*SHORT, f"env={env}", *explore)
    check_exact_resume(cfg, tmp_path, 300, monkeypatch)
    a, b = read_checkpoint(tmp_path / "straight")[0], read_checkpoint(tmp_path / "resumed")[0]
    for key, value in a["objects"]["agent"].items():
        assert torch.equal(value, b["objects"]["agent"][key]), key
    metrics = read_jsonl(tmp_path / "straight" / "metrics.jsonl")
    assert sum(m["updates"] for m in metrics) == 20  # train_ratio × (600 − 200)
    assert "model_loss" in metrics[-1] and "imagined_return" in metrics[-1]
    result = run_cli(f"run={tmp_path / 'straight'}", "episodes=1", module="mbrl_ai.evaluate")
    assert result.returncode == 0, result.stderr
    assert "mean return" in result.stdout
    # real vs imagined, decoded: one path per latent sample from each start, k + 1 states long
    states, actions = real_episode(tmp_path / "straight", seed=0)
    info = inspect_env(env, {})
    paths = open_loop(cfg, info, a["objects"], states, actions, [0, 1], horizon=4, samples=3)
    assert paths[0].shape == (3, min(4, len(actions)) + 1, info.obs_dim)
    assert np.isfinite(paths[1]).all()
    out = visualize(tmp_path / "straight", tmp_path / "figures", horizon=4, starts=2)
    assert all(p.is_file() and p.stat().st_size > 0 for p in out)


def test_a_stop_mid_iteration_acts_at_the_next_real_step_and_resumes_exactly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SIGTERM in the middle of a 100-step iteration: the checkpoint is written at the next real
    step (the iteration is not finished first), and the resumed run finishes that iteration and
    goes on exactly as the straight one."""
    import signal

    import mbrl_ai.algos.dreamer as dreamer
    from mbrl_ai.runtime.checkpointer import RunInterrupted

    cfg = compose(*SHORT, "env=CartPole-v1", "dreamer.steps_per_iteration=200")
    train(cfg, tmp_path / "straight")
    store, sent = dreamer.store_step, []

    def store_then_signal(replay, acting, run, *a):  # noqa: ANN001, ANN002, ANN202
        store(replay, acting, run, *a)
        if run.env_steps >= 300 and not sent:  # iteration 2 runs from 200 to 400
            sent.append(run.env_steps)
            signal.raise_signal(signal.SIGTERM)

    with monkeypatch.context() as m:
        m.setattr(dreamer, "store_step", store_then_signal)
        with pytest.raises(RunInterrupted):
            train(cfg, tmp_path / "resumed")
    state, _ = read_checkpoint(tmp_path / "resumed")
    assert 300 < state["env_steps"] <= 300 + 2 * cfg.n_envs  # the next real step, not step 400
    train(cfg, tmp_path / "resumed")
    for name in ("metrics.jsonl", "eval.jsonl"):
        resumed, straight = tmp_path / "resumed" / name, tmp_path / "straight" / name
        assert comparable(resumed) == comparable(straight), name
    a, b = read_checkpoint(tmp_path / "straight")[0], read_checkpoint(tmp_path / "resumed")[0]
    for key, value in a["objects"]["agent"].items():
        assert torch.equal(value, b["objects"]["agent"][key]), key


def test_eval_context_changes_the_evaluated_policy_and_not_the_training(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    contexts: list[int] = []
    init = DreamerPolicy.__init__

    def record(self: DreamerPolicy, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)  # type: ignore[arg-type]
        contexts.append(self.context)

    monkeypatch.setattr(DreamerPolicy, "__init__", record)
    train(compose(*SHORT, "env=CartPole-v1"), tmp_path / "plain")
    assert contexts == [0, 0]  # acting, evaluated
    split = compose(*SHORT, "env=CartPole-v1", "dreamer.eval_context=6")
    train(split, tmp_path / "split")
    assert contexts[2:] == [0, 6]
    # the training envs act as before, so the run learns exactly the same
    assert comparable(tmp_path / "split" / "metrics.jsonl") == comparable(
        tmp_path / "plain" / "metrics.jsonl"
    )
    a, b = read_checkpoint(tmp_path / "plain")[0], read_checkpoint(tmp_path / "split")[0]
    for key, value in a["objects"]["agent"].items():
        assert torch.equal(value, b["objects"]["agent"][key]), key
    # the evaluation command evaluates the split run's policy on its window too
    policy, _ = load_dreamer_policy(split, inspect_env("CartPole-v1", {}), b["objects"])
    assert policy.context == 6
    acting = compose(*SHORT, "dreamer.act_context=3")
    assert acting.node(DreamerConfig).evaluated_context == 3  # unset: as it acts


@pytest.mark.integration
def test_dreamer_refuses_bad_keys() -> None:
    for bad, key in (
        (["dreamer.actor_grad=backprop"], "dreamer.actor_grad"),
        (["dreamer.seq_len=1"], "dreamer.seq_len"),
        (["dreamer.train_ratio=0"], "dreamer.train_ratio"),
        (["dreamer.unimix=1"], "dreamer.unimix"),
        (["dreamer.explore=greedy"], "dreamer.explore"),
        (["dreamer.explore_epsilon=1.5"], "dreamer.explore_epsilon"),
        (["dreamer.actor_ema=-0.1"], "dreamer.actor_ema"),
        (["dreamer.act_context=-1"], "dreamer.act_context"),
        (["dreamer.eval_context=-1"], "dreamer.eval_context"),
        (["n_envs=2", "dreamer.steps_per_iteration=101"], "dreamer.steps_per_iteration"),
        (["env=Pendulum-v1", "dreamer.actor_grad=all_actions"], "dreamer.actor_grad"),
    ):
        result = run_cli("algo=dreamer", *bad)
        assert result.returncode == 2, (bad, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and key in result.stderr, bad
