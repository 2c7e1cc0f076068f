"""``algo=dyna_q``: the Q-learning and planning updates against hand-computed cases, Dyna-Q+'s
bonus, prioritized sweeping's queue, exact evaluation by dynamic programming, Sutton & Barto's
mazes, exact resumption, and a learning run on the Dyna Maze."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from mbrl_ai.algos import load_policy
from mbrl_ai.algos.dyna_q import DynaQAgent, DynaQConfig
from mbrl_ai.core.checkpoint import read_checkpoint
from mbrl_ai.core.utils import read_jsonl
from mbrl_ai.envs import get_env_state, make_vec_env
from mbrl_ai.envs.tabular import (
    discounted_optimal_value,
    discounted_policy_value,
    optimal_return,
    policy_return,
    transition_table,
)
from mbrl_ai.train import run
from tests.conftest import check_exact_resume, compose, run_cli


def agent(n_states: int = 3, n_actions: int = 2, gamma: float = 0.9, **kw: object) -> DynaQAgent:
    return DynaQAgent(n_states, n_actions, DynaQConfig(**kw), gamma, seed=0)  # type: ignore[arg-type]


def test_q_learning_update_matches_a_hand_computed_case() -> None:
    a = agent(planning_steps=0, alpha=0.5)
    a.q[1] = [2.0, 1.0]
    a.observe(0, 1, 1.0, 1, False)
    assert a.q[0, 1] == pytest.approx(0.5 * (1.0 + 0.9 * 2.0))  # 1.4
    a.observe(2, 0, 3.0, 1, True)  # terminal: no bootstrap from state 1
    assert a.q[2, 0] == pytest.approx(0.5 * 3.0)
    assert a.q[0, 0] == 0.0 and a.q[1].tolist() == [2.0, 1.0]


def test_planning_only_replays_pairs_the_model_has_seen() -> None:
    a = agent(n_states=10, n_actions=4, planning_steps=50)
    replayed: list[int] = []
    sample = a._sample

    def spy(pair: int) -> tuple[float, int, bool]:
        replayed.append(pair)
        return sample(pair)

    a._sample = spy  # type: ignore[method-assign]
    seen = set()
    for s, act, s2 in ((0, 1, 3), (3, 2, 5), (5, 0, 0), (3, 2, 6)):
        a.observe(s, act, 0.5, s2, False)
        seen.add(s * 4 + act)
        assert set(replayed) <= seen
    assert len(replayed) == 200 and set(replayed) == seen


def test_deterministic_model_keeps_the_last_outcome_stochastic_counts_them() -> None:
    det, sto = agent(model="deterministic"), agent(model="stochastic")
    for a in (det, sto):
        a.observe(0, 0, 1.0, 1, False)
        a.observe(0, 0, 3.0, 2, False)
        a.observe(0, 0, 5.0, 2, False)
    assert det.outcomes[0] == {2: [1, 5.0, False]}
    assert sto.outcomes[0] == {1: [1, 1.0, False], 2: [2, 8.0, False]}
    assert 0 not in det.predecessors[1] and 0 in sto.predecessors[1]


def test_dyna_q_plus_bonus_grows_with_the_time_since_a_pair_was_tried() -> None:
    a = agent(method="dyna_q_plus", kappa=0.01, planning_steps=0)
    a.observe(0, 0, 0.0, 1, False)
    assert a.outcomes[1] == {0: [1, 0.0, False]}  # the untried action of state 0: stays, reward 0
    assert a.bonus(0) == 0.0  # tried just now
    bonuses = []
    for _ in range(4):
        a.observe(1, 0, 0.0, 2, False)
        bonuses.append(a.bonus(0))
    assert bonuses == pytest.approx([0.01 * np.sqrt(k) for k in (1, 2, 3, 4)])
    a.observe(0, 1, 1.0, 2, False)  # trying the stand-in pair replaces its outcome
    assert a.outcomes[1] == {2: [1, 1.0, False]} and a.bonus(1) == 0.0


def test_prioritized_sweeping_pops_the_largest_update_first() -> None:
    a = agent(n_states=5, n_actions=1, gamma=1.0, method="prioritized_sweeping", theta=0.05)
    for s, r in ((0, 0.3), (1, 0.9), (2, 0.04), (3, 0.6)):
        a._add_outcome(s, 4, r, True)  # pair s: reward r, terminal
        a.queue_pair(s)
    assert 2 not in a.queued  # 0.04 <= theta
    a.outcomes[0][4][1] = 2.0  # pair 0's pending update grows to 2.0: queued again, higher
    a.queue_pair(0)
    a.outcomes[3][4][1] = 0.1  # pair 3's shrinks: its higher entry stays
    a.queue_pair(3)
    assert [a.pop(), a.pop(), a.pop(), a.pop()] == [0, 1, 3, None]


def test_prioritized_sweeping_propagates_back_along_predecessors() -> None:
    """A chain 0 -> 1 -> 2 -> goal: one real step at the goal's edge, then the sweep carries the
    value back to the start (uniform planning could not in n = 3 updates)."""
    a = agent(n_states=4, n_actions=1, gamma=0.5, method="prioritized_sweeping", alpha=1.0,
              planning_steps=0)  # fmt: skip
    for s in (0, 1):
        a.observe(s, 0, 0.0, s + 1, False)
    a.d.planning_steps = 3
    a.observe(2, 0, 1.0, 3, True)
    assert a.q[:3, 0].tolist() == [0.25, 0.5, 1.0]


class TwoStates(gym.Env):
    """State 0: action 0 stays (reward 1), action 1 ends the episode with reward 5 or 0 (p 0.5)."""

    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)
    P = {
        0: {0: [(1.0, 0, 1.0, False)], 1: [(0.5, 1, 5.0, True), (0.5, 1, 0.0, True)]},
        1: {0: [(1.0, 1, 0.0, True)], 1: [(1.0, 1, 0.0, True)]},
    }
    initial_state_distrib = np.array([1.0, 0.0])


def test_exact_evaluation_of_a_two_state_mdp() -> None:
    table = transition_table(TwoStates())
    assert table is not None
    stay, leave = np.array([0, 0]), np.array([1, 0])
    assert policy_return(table, stay, 10) == 10.0
    assert policy_return(table, leave, 10) == 2.5
    # the best over 3 steps: stay twice, then leave (1 + 1 + 2.5); over 1 step: leave
    assert optimal_return(table, 3) == 4.5 and optimal_return(table, 1) == 2.5
    assert discounted_policy_value(table, stay, 0.9) == pytest.approx(10.0)
    assert discounted_policy_value(table, leave, 0.9) == pytest.approx(2.5)
    assert discounted_optimal_value(table, 0.5) == pytest.approx(2.5)  # 1/(1-0.5) = 2 < 2.5
    assert discounted_optimal_value(table, 0.9) == pytest.approx(10.0)


def test_taxi_optimum_under_its_time_limit_is_below_its_registered_threshold() -> None:
    table = transition_table(gym.make("Taxi-v4"))
    assert table is not None
    assert optimal_return(table, 200) == pytest.approx(7.93)


@pytest.mark.parametrize(
    "env_id, shortest_before, shortest_after",
    [
        ("mbrl_ai/DynaMaze-v0", 14, 14),
        ("mbrl_ai/BlockingMaze-v0", 10, 16),
        ("mbrl_ai/ShortcutMaze-v0", 16, 10),
    ],
)
def test_mazes_shortest_paths_and_their_change(
    env_id: str, shortest_before: int, shortest_after: int
) -> None:
    env = gym.make(env_id)

    def shortest() -> int:
        table = transition_table(env)
        assert table is not None
        return next(t for t in range(1, 100) if optimal_return(table, t) == 1.0)

    env.reset(seed=0)
    assert shortest() == shortest_before
    change = getattr(env.unwrapped, "change_at", None) or 0
    for _ in range(change):
        env.step(0)
    assert shortest() == shortest_after
    envs = make_vec_env(env_id, 1, 0)
    assert get_env_state(envs) is not None  # the maze's clock and position are checkpointed


@pytest.mark.parametrize("env_id", ["mbrl_ai/DynaMaze-v0", "mbrl_ai/BlockingMaze-v0"])
def test_mazes_pass_gymnasiums_env_checker(env_id: str) -> None:
    env = gym.make(env_id, render_mode="ansi").unwrapped
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    assert env.render().count("\n") == 6 and "A" in env.render()


MAZE = ["experiment=dyna_maze", "logger.progress=off"]


def test_dyna_maze_n50_finds_the_14_step_optimum(tmp_path: Path) -> None:
    """The learning test: Dyna-Q with n = 50 on the Dyna Maze (the book: optimal within a few
    episodes); checked exactly on the saved Q table, through ``evaluate``'s loader."""
    result = run(compose(*MAZE, "total_timesteps=1500"), tmp_path)
    policy, _, _ = load_policy(tmp_path)
    table = transition_table(gym.make("mbrl_ai/DynaMaze-v0"))
    assert table is not None
    greedy = policy.q.argmax(1)  # type: ignore[attr-defined]
    assert policy_return(table, greedy, 14) == 1.0  # reaches the goal in 14 steps: optimal
    assert result.evals[-1]["exact_return"] == 1.0 == result.evals[-1]["optimal_return"]


@pytest.mark.parametrize(
    "extra",
    [
        ["dyna_q.method=prioritized_sweeping", "dyna_q.model=stochastic"],
        ["env=mbrl_ai/BlockingMaze-v0", "dyna_q.method=dyna_q_plus", "+env_kwargs.change_at=300"],
        ["env=FrozenLake-v1", "dyna_q.model=stochastic", "dyna_q.planning_update=expected"],
    ],
)
def test_dyna_q_resumes_exactly(
    extra: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = compose(*MAZE, "total_timesteps=800", "checkpoint_every=200", "dyna_q.log_every=100",
                  *extra)  # fmt: skip
    check_exact_resume(cfg, tmp_path, 400, monkeypatch)
    (a, arrays_a), (b, arrays_b) = (read_checkpoint(tmp_path / d) for d in ("straight", "resumed"))
    assert np.array_equal(a["objects"]["agent"]["q"], b["objects"]["agent"]["q"])
    assert arrays_a.keys() == arrays_b.keys()
    for key in arrays_a:
        assert np.array_equal(arrays_a[key], arrays_b[key]), key


@pytest.mark.integration
def test_dyna_q_cli_refuses_what_it_cannot_run_and_evaluates_a_run(tmp_path: Path) -> None:
    for bad, key in (
        (["env=CartPole-v1"], "env"),
        (["n_envs=2"], "n_envs"),
        (["dyna_q.method=dyna"], "dyna_q.method"),
        (["dyna_q.alpha=0"], "dyna_q.alpha"),
        (["planning_horizon=3"], "planning_horizon"),
    ):
        result = run_cli("algo=dyna_q", "env=mbrl_ai/DynaMaze-v0", *bad)
        assert result.returncode == 2, (bad, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and key in result.stderr, bad
    done = run_cli(*MAZE, "total_timesteps=300", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 0, done.stderr
    assert "exact_return" in read_jsonl(tmp_path / "eval.jsonl")[-1]
    result = run_cli(f"run={tmp_path}", "episodes=2", module="mbrl_ai.evaluate")
    assert result.returncode == 0, result.stderr
    assert "mean return" in result.stdout
