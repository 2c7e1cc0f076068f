"""Exact evaluation of tabular policies by dynamic programming over an environment's own table.

Gymnasium's toy-text environments (FrozenLake, Taxi, CliffWalking) and the package's mazes expose
their dynamics as ``P[s][a] = [(probability, next state, reward, terminated), ...]`` and their start
distribution as ``initial_state_distrib``. Over a time limit of ``T`` steps, the expected return of
a deterministic policy from the start distribution is then a finite-horizon backup, computed
exactly (no sampled episodes):

    V_0 = 0,   V_t(s) = sum_{s'} p(s' | s, pi(s)) [r + gamma (1 - terminated) V_{t-1}(s')],
    return = sum_s mu(s) V_T(s)

and the optimum replaces pi(s) by the best action (finite-horizon value iteration). With the
environment's own time limit and ``gamma = 1`` this is the quantity a 100-episode mean estimates,
so "solved" can mean "optimal": Taxi-v4's optimum under its 200-step limit is 7.93 (its
registered threshold, 8, is above it).

The optimum over a time limit may need a policy that changes with the steps left (FrozenLake's
slippery 8x8: 0.913 over 200 steps, while the best discounted policies score up to 0.89 there), so
the discounted objective a Q-learner optimises is evaluated exactly too: the policy's value
``(I - gamma P_pi)^-1 r_pi`` from the start distribution, against the optimum found by policy
iteration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TransitionTable:
    """Every outcome of every (state, action) pair, as flat arrays (one row per outcome)."""

    n_states: int
    n_actions: int
    pair: np.ndarray  # [K] state * n_actions + action
    next_state: np.ndarray  # [K]
    prob: np.ndarray  # [K]
    reward: np.ndarray  # [K]
    terminal: np.ndarray  # [K] bool
    initial: np.ndarray  # [n_states] start distribution

    def q_values(self, v: np.ndarray, gamma: float = 1.0) -> np.ndarray:
        """One backup: ``Q[s, a] = E[r + gamma (1 - terminated) v(s')]``, shape [S, A]."""
        target = self.reward + gamma * np.where(self.terminal, 0.0, v[self.next_state])
        q = np.bincount(self.pair, self.prob * target, self.n_states * self.n_actions)
        return q.reshape(self.n_states, self.n_actions)


def transition_table(env: Any) -> TransitionTable | None:
    """The table of ``env`` (any wrapper of it), or None if it exposes none."""
    inner = getattr(env, "unwrapped", env)
    table, initial = getattr(inner, "P", None), getattr(inner, "initial_state_distrib", None)
    if table is None or initial is None:
        return None
    rows = [
        (s * len(actions) + a, nxt, p, r, done)
        for s, actions in table.items()
        for a, outcomes in actions.items()
        for p, nxt, r, done in outcomes
    ]
    pair, nxt, prob, reward, done = (np.array(col) for col in zip(*rows, strict=True))
    return TransitionTable(
        n_states=len(table),
        n_actions=len(table[0]),
        pair=pair.astype(np.int64),
        next_state=nxt.astype(np.int64),
        prob=prob.astype(np.float64),
        reward=reward.astype(np.float64),
        terminal=done.astype(bool),
        initial=np.asarray(initial, dtype=np.float64),
    )


def policy_return(
    table: TransitionTable, policy: np.ndarray, horizon: int, gamma: float = 1.0
) -> float:
    """Expected return of the deterministic ``policy`` (an action per state) over ``horizon``
    steps from the start distribution."""
    v = np.zeros(table.n_states)
    rows = np.arange(table.n_states)
    for _ in range(horizon):
        v = table.q_values(v, gamma)[rows, policy]
    return float(table.initial @ v)


def optimal_return(table: TransitionTable, horizon: int, gamma: float = 1.0) -> float:
    """The best expected return over ``horizon`` steps from the start distribution (the optimal
    policy may depend on the steps left; a stationary greedy one can fall short of it)."""
    v = np.zeros(table.n_states)
    for _ in range(horizon):
        v = table.q_values(v, gamma).max(1)
    return float(table.initial @ v)


def _policy_values(table: TransitionTable, policy: np.ndarray, gamma: float) -> np.ndarray:
    """``v = (I - gamma P_pi)^-1 r_pi`` per state: one linear solve."""
    n = table.n_states
    chosen = table.pair % table.n_actions == policy[table.pair // table.n_actions]
    rows, nxt = table.pair[chosen] // table.n_actions, table.next_state[chosen]
    p = np.zeros((n, n))
    np.add.at(p, (rows, nxt), table.prob[chosen] * ~table.terminal[chosen])
    r = np.bincount(rows, table.prob[chosen] * table.reward[chosen], n)
    return np.linalg.solve(np.eye(n) - gamma * p, r)


def discounted_policy_value(table: TransitionTable, policy: np.ndarray, gamma: float) -> float:
    """Infinite-horizon discounted value of ``policy`` from the start distribution (gamma < 1)."""
    return float(table.initial @ _policy_values(table, policy, gamma))


def discounted_optimal_value(table: TransitionTable, gamma: float) -> float:
    """The optimal discounted value from the start distribution, by policy iteration."""
    n = table.n_states
    policy = np.zeros(n, dtype=np.int64)
    for _ in range(10_000):
        v = _policy_values(table, policy, gamma)
        q = table.q_values(v, gamma)
        better = q.max(1) > q[np.arange(n), policy] + 1e-12 * np.maximum(1.0, np.abs(v))
        if not better.any():
            return float(table.initial @ v)
        policy = np.where(better, q.argmax(1), policy)
    raise RuntimeError("policy iteration did not converge")
