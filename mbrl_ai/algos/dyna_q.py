"""``algo=dyna_q``: tabular Dyna-Q, Dyna-Q+ and prioritized sweeping (Sutton & Barto, chapter 8).

    every real step (one env):
        act ε-greedily on Q (ties broken at random); observe r, s'
        direct RL:  Q(s,a) += α [r + γ max_a' Q(s',a') − Q(s,a)]      (no bootstrap past a
                                                                         terminal state)
        model:      remember what (s,a) led to (its last outcome, or counts of next states)
        planning:   n simulated Q-learning updates from the model
            dyna_q:                a pair drawn uniformly from the tried ones, an outcome from the model
            dyna_q_plus:           the same, reward + κ √(steps since the pair was last tried);
                                   untried actions of visited states stay put with reward 0
            prioritized_sweeping:  the pair with the largest pending update |target − Q| > θ, then
                                   its predecessors are queued by theirs (the real step's update
                                   goes through the queue too, as in the book's box)

A state is the index of the env's Discrete observation (the run sees it one-hot and takes the
argmax). Evaluation acts greedily (ties: the lowest action); where the env exposes its transition
table, it also reports the greedy policy's exact return and the optimum, undiscounted over the
episode limit and discounted with ``gamma`` (:mod:`mbrl_ai.envs.tabular`).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import SyncVectorEnv

from mbrl_ai.algos import AlgorithmSpec, register
from mbrl_ai.config import Config, ConfigError, need
from mbrl_ai.core.ranges import Ge, In, OneOf
from mbrl_ai.envs import EnvInfo, inspect_env
from mbrl_ai.envs.tabular import (
    discounted_optimal_value,
    discounted_policy_value,
    optimal_return,
    policy_return,
    transition_table,
)
from mbrl_ai.modules import RunningMeanStd
from mbrl_ai.runtime import Checkpointer, RunContext, RunResult, start_run

# the three planning rules of the agent below (``dyna_q.method``)
DYNA_METHODS = ("dyna_q", "dyna_q_plus", "prioritized_sweeping")


@dataclass
class DynaQConfig:
    """Tabular Dyna-Q (``algo=dyna_q``), Sutton & Barto chapter 8: Q-learning on every real step,
    a table model of what each tried (state, action) led to, and ``planning_steps`` simulated
    Q-learning updates from the model after every real step. ``method`` chooses how the
    simulated updates are picked: uniformly among tried pairs (Dyna-Q), the same with an
    exploration bonus for pairs not tried for long (Dyna-Q+), or by priority (prioritized
    sweeping). For Discrete observations and actions. Registered by ``algos/dyna_q.py``."""

    key: ClassVar[str] = "dyna_q"

    method: Annotated[str, OneOf(DYNA_METHODS)] = "dyna_q"
    """``dyna_q``, ``dyna_q_plus`` (bonus ``kappa * sqrt(steps since the pair was last tried)``
    in simulated updates; untried actions of a visited state are modelled as staying put with
    reward 0) or ``prioritized_sweeping`` (a queue of pairs by the size of their pending update;
    every update, real ones included, goes through the queue)."""
    planning_steps: Annotated[int, Ge(0)] = 5
    """Simulated updates after every real step (n; 0: plain Q-learning)."""
    alpha: Annotated[float, In(0.0, 1.0, "(]")] = 0.1
    """Step size of every Q update."""
    epsilon: Annotated[float, In(0.0, 1.0, "[]")] = 0.1
    """ε-greedy exploration (ties between greedy actions are broken at random)."""
    model: Annotated[str, OneOf(("deterministic", "stochastic"))] = "deterministic"
    """``deterministic`` (a pair's last outcome, as in the book) or ``stochastic`` (counts of
    next states and mean rewards; planning samples a next state by its count)."""
    planning_update: Annotated[str, OneOf(("sample", "expected"))] = "sample"
    """Dyna-Q / Dyna-Q+ planning: ``sample`` (an outcome drawn from the model, the book's
    Dyna-Q) or ``expected`` (the model's expectation over every outcome seen; the same for a
    deterministic model). Prioritized sweeping always uses the expectation."""
    kappa: Annotated[float, Ge(0.0)] = 1e-4
    """Dyna-Q+: weight of the exploration bonus."""
    theta: Annotated[float, Ge(0.0)] = 1e-4
    """Prioritized sweeping: pairs whose update is no larger than this are not queued."""
    q_init: float = 0.0
    """Initial value of every Q entry."""
    log_every: Annotated[int, Ge(1)] = 100
    """Real steps per iteration (one log line, checkpoint and signal check)."""
    exact_eval: bool = True
    """Where the env exposes its transition table (toy text, the mazes): every evaluation also
    reports the greedy policy's exact return and the optimum (``exact_return``,
    ``optimal_return`` in ``eval.jsonl``), undiscounted over the env's time limit (or
    ``eval_max_steps``), and its discounted value beside the discounted optimum
    (``discounted_value``, ``optimal_discounted_value``; with ``gamma`` < 1)."""

    def check(self, c: Config) -> None:
        need(c.n_envs == 1, "n_envs", c.n_envs, "algo=dyna_q steps one env: must be 1")


# the agent's own random draws (exploration, ties, planning) come from a generator seeded with
# the run's seed plus this
AGENT_SEED_OFFSET = 40_009


class DynaQAgent:
    """A Q table, a table model of the env, and the planning that connects them."""

    def __init__(self, n_states: int, n_actions: int, d: DynaQConfig, gamma: float, seed: int):
        self.d, self.gamma = d, gamma
        self.n_states, self.n_actions = n_states, n_actions
        self.q = np.full((n_states, n_actions), d.q_init, dtype=np.float64)
        self.rng = np.random.default_rng(seed + AGENT_SEED_OFFSET)
        self.time = 0  # real steps observed (Dyna-Q+'s clock)
        # the model: per pair (state * n_actions + action), next state -> [count, reward sum,
        # terminated]; ``pairs`` lists the pairs it knows in the order they became known
        self.outcomes: dict[int, dict[int, list]] = {}
        self.pairs: list[int] = []
        self.tried = np.zeros(n_states * n_actions, dtype=bool)
        self.last_tried = np.zeros(n_states * n_actions, dtype=np.int64)
        self.visited = np.zeros(n_states, dtype=bool)
        # prioritized sweeping: next state -> pairs known to lead there; the queue of pairs by
        # priority (entries of a pair re-queued with a higher priority are skipped when popped)
        self.predecessors: dict[int, dict[int, None]] = {}
        self.queue: list[tuple[float, int, int]] = []  # (−priority, tick, pair)
        self.queued: dict[int, tuple[int, float]] = {}  # pair -> (tick, priority) of its live entry
        self.tick = 0
        self.planning_updates = 0

    # -- acting ----------------------------------------------------------------------------------

    def act(self, state: int) -> int:
        """ε-greedy on Q; ties between greedy actions broken uniformly at random."""
        if self.rng.random() < self.d.epsilon:
            return int(self.rng.integers(self.n_actions))
        row = self.q[state]
        best = np.flatnonzero(row == row.max())
        return int(best[0] if len(best) == 1 else best[self.rng.integers(len(best))])

    def greedy(self) -> np.ndarray:
        """The greedy action of every state (ties: the lowest action)."""
        return self.q.argmax(1)

    # -- learning --------------------------------------------------------------------------------

    def observe(self, s: int, a: int, r: float, s2: int, terminated: bool) -> None:
        """One real transition: direct RL, model learning, then planning."""
        self.time += 1
        pair = s * self.n_actions + a
        self._learn_model(s, pair, r, s2, terminated)
        if self.d.method == "prioritized_sweeping":
            self.queue_pair(pair)
            self._sweep()
            return
        self.q[s, a] += self.d.alpha * (self._target(r, s2, terminated) - self.q[s, a])
        self._plan()

    def _target(self, r: float, s2: int, terminated: bool) -> float:
        return r if terminated else r + self.gamma * self.q[s2].max()

    def _learn_model(self, s: int, pair: int, r: float, s2: int, terminated: bool) -> None:
        if self.d.method == "dyna_q_plus" and not self.visited[s]:
            # the book's Dyna-Q+: untried actions of a visited state lead back to it, reward 0
            for other in range(s * self.n_actions, (s + 1) * self.n_actions):
                if other not in self.outcomes:
                    self._add_outcome(other, s, 0.0, False)
        self.visited[s] = True
        if not self.tried[pair] or self.d.model == "deterministic":
            self._forget(pair)  # a stand-in outcome, or the last one of a deterministic model
        self.tried[pair] = True
        self.last_tried[pair] = self.time
        self._add_outcome(pair, s2, r, terminated)

    def _forget(self, pair: int) -> None:
        for s2 in self.outcomes.get(pair, {}):
            self.predecessors[s2].pop(pair, None)
        if pair in self.outcomes:
            self.outcomes[pair] = {}

    def _add_outcome(self, pair: int, s2: int, r: float, terminated: bool) -> None:
        if pair not in self.outcomes:
            self.outcomes[pair] = {}
            self.pairs.append(pair)
        seen = self.outcomes[pair].setdefault(s2, [0, 0.0, False])
        seen[0] += 1
        seen[1] += r
        seen[2] = terminated
        self.predecessors.setdefault(s2, {})[pair] = None

    def _sample(self, pair: int) -> tuple[float, int, bool]:
        """An outcome of ``pair`` from the model: (mean reward, next state, terminated)."""
        outcomes = self.outcomes[pair]
        if len(outcomes) == 1:
            ((s2, (count, rsum, done)),) = outcomes.items()
            return rsum / count, s2, done
        k = self.rng.integers(sum(o[0] for o in outcomes.values()))
        for s2, (count, rsum, done) in outcomes.items():
            if k < count:
                return rsum / count, s2, done
            k -= count
        raise AssertionError("unreachable: k is below the total count")

    def _expected_target(self, pair: int) -> float:
        """The model's expected one-step target of ``pair`` (prioritized sweeping)."""
        outcomes = self.outcomes[pair]
        total = sum(o[0] for o in outcomes.values())
        return sum(
            count / total * self._target(rsum / count, s2, done)
            for s2, (count, rsum, done) in outcomes.items()
        )

    def bonus(self, pair: int) -> float:
        """Dyna-Q+'s exploration bonus: κ √(real steps since ``pair`` was last tried)."""
        return self.d.kappa * math.sqrt(self.time - self.last_tried[pair])

    def _plan(self) -> None:
        """Dyna-Q / Dyna-Q+: ``planning_steps`` updates of pairs drawn uniformly from the model."""
        n = self.d.planning_steps
        if n == 0 or not self.pairs:
            return
        plus = self.d.method == "dyna_q_plus"
        expected = self.d.planning_update == "expected"
        for u in self.rng.random(n):
            pair = self.pairs[int(u * len(self.pairs))]
            if expected:
                target = self._expected_target(pair)
            else:
                r, s2, done = self._sample(pair)
                target = self._target(r, s2, done)
            if plus:
                target += self.bonus(pair)
            s, a = divmod(pair, self.n_actions)
            self.q[s, a] += self.d.alpha * (target - self.q[s, a])
        self.planning_updates += n

    # -- prioritized sweeping --------------------------------------------------------------------

    def queue_pair(self, pair: int) -> None:
        """Queue ``pair`` by |its pending update| if that exceeds θ and its queued priority."""
        s, a = divmod(pair, self.n_actions)
        priority = abs(self._expected_target(pair) - self.q[s, a])
        if priority <= self.d.theta:
            return
        live = self.queued.get(pair)
        if live is not None and live[1] >= priority:
            return
        self.tick += 1
        self.queued[pair] = (self.tick, priority)
        heapq.heappush(self.queue, (-priority, self.tick, pair))

    def pop(self) -> int | None:
        """The queued pair of the highest priority (None when the queue is empty)."""
        while self.queue:
            _, tick, pair = heapq.heappop(self.queue)
            if self.queued.get(pair, (None,))[0] == tick:
                del self.queued[pair]
                return pair
        return None

    def _sweep(self) -> None:
        for _ in range(self.d.planning_steps):
            pair = self.pop()
            if pair is None:
                return
            s, a = divmod(pair, self.n_actions)
            self.q[s, a] += self.d.alpha * (self._expected_target(pair) - self.q[s, a])
            self.planning_updates += 1
            for before in list(self.predecessors.get(s, {})):
                self.queue_pair(before)

    # -- checkpoints -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The Q table (what ``evaluate`` loads) and the counters; the model is in :meth:`arrays`."""
        return {
            "q": torch.from_numpy(self.q.copy()),
            "rng": self.rng.bit_generator.state,
            "time": self.time,
            "tick": self.tick,
            "planning_updates": self.planning_updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        q = state["q"].numpy()
        if q.shape != self.q.shape:
            raise ValueError(f"Q table of shape {tuple(q.shape)}, this env needs {self.q.shape}")
        self.q[...] = q  # in place: the evaluation policy holds this array
        self.rng.bit_generator.state = state["rng"]
        self.time, self.tick = state["time"], state["tick"]
        self.planning_updates = state["planning_updates"]

    def arrays(self) -> dict[str, np.ndarray]:
        rows = [
            (pair, s2, count, rsum, done)
            for pair in self.pairs
            for s2, (count, rsum, done) in self.outcomes[pair].items()
        ]
        links = [(s2, pair) for s2, before in self.predecessors.items() for pair in before]
        return {
            "pairs": np.array(self.pairs, dtype=np.int64),
            "outcomes": np.array(rows, dtype=np.float64).reshape(-1, 5),
            "predecessors": np.array(links, dtype=np.int64).reshape(-1, 2),
            "queue": np.array(self.queue, dtype=np.float64).reshape(-1, 3),
            "queued": np.array(
                [(pair, tick, p) for pair, (tick, p) in self.queued.items()], dtype=np.float64
            ).reshape(-1, 3),
            "tried": self.tried,
            "last_tried": self.last_tried,
            "visited": self.visited,
        }

    def load_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        for name in ("tried", "last_tried", "visited"):
            getattr(self, name)[...] = arrays[name]
        self.pairs = [int(p) for p in arrays["pairs"]]
        self.outcomes = {pair: {} for pair in self.pairs}
        for pair, s2, count, rsum, done in arrays["outcomes"]:
            self.outcomes[int(pair)][int(s2)] = [int(count), float(rsum), bool(done)]
        self.predecessors = {}
        for s2, pair in arrays["predecessors"]:
            self.predecessors.setdefault(int(s2), {})[int(pair)] = None
        self.queue = [(float(p), int(t), int(pair)) for p, t, pair in arrays["queue"]]
        self.queued = {int(pair): (int(t), float(p)) for pair, t, p in arrays["queued"]}


class TabularPolicy:
    """Greedy actions of a Q table, for inputs that are one-hot states (evaluation)."""

    discrete = True

    def __init__(self, q: np.ndarray) -> None:
        self.q = q

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        states = obs.argmax(-1).cpu().numpy()
        return torch.as_tensor(self.q[states].argmax(-1))


def exact_evaluation(run: RunContext, agent: DynaQAgent) -> dict[str, float] | None:
    """The greedy policy's exact return and the optimum, on the training env's current table
    (the layout it has now, for the changing mazes), undiscounted over the episode limit."""
    assert isinstance(run.envs, SyncVectorEnv)  # one env: check_dyna_q refuses async
    table = transition_table(run.envs.envs[0])
    if table is None:
        return None
    horizon = run.info.max_episode_steps or run.cfg.eval_max_steps
    greedy, gamma = agent.greedy(), run.cfg.gamma
    row = {
        "exact_return": policy_return(table, greedy, horizon),
        "optimal_return": optimal_return(table, horizon),
    }
    if gamma < 1.0:  # the objective the agent optimises, exactly
        row["discounted_value"] = discounted_policy_value(table, greedy, gamma)
        row["optimal_discounted_value"] = discounted_optimal_value(table, gamma)
    return row


def train_dyna_q(cfg: Config, out_dir: Path) -> RunResult:
    """Train as configured, resuming from ``out_dir``'s newest checkpoint."""
    run = start_run(cfg, out_dir)
    d, info = cfg.node(DynaQConfig), run.info
    assert isinstance(info.observation_space, gym.spaces.Discrete)
    agent = DynaQAgent(int(info.observation_space.n), info.action_dim, d, cfg.gamma, cfg.seed)
    ckpt = Checkpointer(run)
    ckpt.track(agent=agent)
    exact = d.exact_eval and transition_table(run.envs.envs[0]) is not None  # type: ignore[attr-defined]
    run.evaluate_with(
        TabularPolicy(agent.q), extra=(lambda: exact_evaluation(run, agent)) if exact else None
    )
    with run, ckpt:
        ckpt.begin()
        while run.env_steps < cfg.total_timesteps:
            run.collect.finished_returns.clear()
            run.collect.finished_lengths.clear()
            updates = agent.planning_updates
            for _ in range(min(d.log_every, cfg.total_timesteps - run.env_steps)):
                s = int(run.collect.obs[0].argmax())
                a = agent.act(s)
                step = run.step_envs(np.array([a]), np.array([a]))
                agent.observe(s, a, float(step.rewards[0]), int(step.next_obs[0].argmax()),
                              bool(step.terminated[0]))  # fmt: skip
                run.env_steps += 1
            run.iteration += 1
            run.maybe_evaluate()
            lengths = run.collect.finished_lengths
            run.log_iteration(
                {
                    "planning_updates": agent.planning_updates - updates,
                    "model_pairs": len(agent.pairs),
                    "queue": len(agent.queued),
                    "episode_length": float(np.mean(lengths)) if lengths else None,
                }
            )
            ckpt.end_iteration()
        ckpt.finish()
    return run.result()


def load_dyna_q_policy(
    cfg: Config, info: EnvInfo, objects: Mapping[str, Any]
) -> tuple[TabularPolicy, RunningMeanStd | None]:
    q = objects["agent"]["q"].numpy()
    assert isinstance(info.observation_space, gym.spaces.Discrete)
    expected = (int(info.observation_space.n), info.action_dim)
    if tuple(q.shape) != expected:
        raise ValueError(f"Q table of shape {tuple(q.shape)}, this env needs {expected}")
    return TabularPolicy(q), None


def check_dyna_q(cfg: Config) -> None:
    if cfg.vectorization != "sync":
        raise ConfigError("vectorization", cfg.vectorization, "algo=dyna_q needs: sync")
    space = inspect_env(cfg.env, cfg.env_kwargs).observation_space
    if isinstance(space, gym.spaces.Discrete) and int(space.start) != 0:
        raise ConfigError(
            "env",
            cfg.env,
            f"algo=dyna_q needs states numbered from 0; {space} starts at {space.start}",
        )


register(
    AlgorithmSpec(
        name="dyna_q",
        train=train_dyna_q,
        load_policy=load_dyna_q_policy,
        action_spaces=(gym.spaces.Discrete,),
        observation_spaces=(gym.spaces.Discrete,),
        reads=("gamma",),
        nodes=(DynaQConfig,),
        check=check_dyna_q,
        smoke=(
            "env=mbrl_ai/DynaMaze-v0",
            "total_timesteps=800",
            "eval_every=200",
            "eval_episodes=1",
            "eval_n_envs=1",
            "eval_max_steps=200",
            "checkpoint_every=200",
            "dyna_q.planning_steps=20",
            "dyna_q.log_every=100",
        ),
    )
)
