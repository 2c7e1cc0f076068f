"""Sutton & Barto's grid mazes of chapter 8, as Gymnasium environments the package registers.

    env=mbrl_ai/DynaMaze-v0                                        Figure 8.2 (6x9, 14-step optimum)
    env=mbrl_ai/BlockingMaze-v0 +env_kwargs.change_at=1000         Figure 8.4
    env=mbrl_ai/ShortcutMaze-v0 +env_kwargs.change_at=3000         Figure 8.5

A state is a cell, numbered ``row * 9 + column`` (``Discrete(54)``; the networks of other
algorithms see it one-hot). Actions: 0 up, 1 down, 2 left, 3 right; a move into a wall or off the
grid leaves the agent where it is. Reward 1 for reaching the goal, which ends the episode, 0
otherwise; episodes have no time limit (as in the book), so evaluation cuts them at
``eval_max_steps``.

The blocking and shortcut mazes change their wall once the environment has taken ``change_at``
steps, counted over all its episodes; the run also tells every environment its real-step count
(``set_run_step``) once per iteration and before each evaluation, so an evaluation environment
starts each evaluation with the training environment's layout (its own steps count on from there).

Each maze exposes its transition table for the current layout in Gymnasium's toy-text format
(``P[s][a] = [(probability, next state, reward, terminated)]``) and its start distribution
(``initial_state_distrib``), which is what exact evaluation (:mod:`mbrl_ai.envs.tabular`) reads.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

ROWS, COLS = 6, 9
# row, column offsets of up, down, left, right
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))


class GridMaze(gym.Env):
    """A 6x9 grid with walls, a start cell and a goal cell; walls may change after some steps."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        start: tuple[int, int],
        goal: tuple[int, int],
        walls: list[tuple[int, int]],
        walls_after: list[tuple[int, int]] | None = None,
        change_at: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        if change_at is not None and change_at < 0:
            raise ValueError(f"change_at={change_at}: the step of the change must be >= 0")
        self.start, self.goal = start, goal
        # tuples, not sets: plain values, which the run's checkpoint of the env state can hold
        self.walls_before = tuple(sorted(walls))
        self.walls_after = tuple(sorted(walls_after if walls_after is not None else walls))
        self.change_at = change_at
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Discrete(ROWS * COLS)
        self.action_space = gym.spaces.Discrete(len(MOVES))
        self.steps = 0  # over all episodes: the clock of the change
        self.position = start

    # -- the layout ----------------------------------------------------------------------------

    @property
    def walls(self) -> tuple[tuple[int, int], ...]:
        changed = self.change_at is not None and self.steps >= self.change_at
        return self.walls_after if changed else self.walls_before

    def set_run_step(self, step: int) -> None:
        """The run's real-step count: the clock of the change (see the module docstring)."""
        self.steps = int(step)

    def _move(self, cell: tuple[int, int], action: int, walls: tuple) -> tuple[int, int]:
        dr, dc = MOVES[action]
        nxt = (cell[0] + dr, cell[1] + dc)
        inside = 0 <= nxt[0] < ROWS and 0 <= nxt[1] < COLS
        return nxt if inside and nxt not in walls else cell

    @property
    def P(self) -> dict[int, dict[int, list[tuple[float, int, float, bool]]]]:  # noqa: N802
        """Transition table of the current layout (toy-text format)."""
        walls, table = self.walls, {}
        for r in range(ROWS):
            for c in range(COLS):
                row = {}
                for a in range(len(MOVES)):
                    if (r, c) == self.goal:  # absorbing: never entered from a start state
                        row[a] = [(1.0, _index((r, c)), 0.0, True)]
                        continue
                    nxt = self._move((r, c), a, walls)
                    at_goal = nxt == self.goal
                    row[a] = [(1.0, _index(nxt), float(at_goal), at_goal)]
                table[_index((r, c))] = row
        return table

    @property
    def initial_state_distrib(self) -> np.ndarray:
        dist = np.zeros(ROWS * COLS)
        dist[_index(self.start)] = 1.0
        return dist

    # -- the Gymnasium interface -----------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[int, dict]:
        super().reset(seed=seed)
        self.position = self.start
        return _index(self.position), {}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict]:
        a = int(action)
        if not 0 <= a < len(MOVES):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        self.position = self._move(self.position, a, self.walls)
        self.steps += 1
        at_goal = self.position == self.goal
        return _index(self.position), float(at_goal), at_goal, False, {}

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        walls, lines = self.walls, []
        for r in range(ROWS):
            cells = []
            for c in range(COLS):
                cell = (r, c)
                cells.append(
                    "A"
                    if cell == self.position
                    else "G"
                    if cell == self.goal
                    else "S"
                    if cell == self.start
                    else "#"
                    if cell in walls
                    else "."
                )
            lines.append("".join(cells))
        return "\n".join(lines) + "\n"


def _index(cell: tuple[int, int]) -> int:
    return cell[0] * COLS + cell[1]


def dyna_maze(render_mode: str | None = None) -> GridMaze:
    """Figure 8.2's maze: start at row 2 of the left column, goal in the top-right corner."""
    walls = [(1, 2), (2, 2), (3, 2), (4, 5), (0, 7), (1, 7), (2, 7)]
    return GridMaze((2, 0), (0, 8), walls, render_mode=render_mode)


def blocking_maze(change_at: int = 1000, render_mode: str | None = None) -> GridMaze:
    """Figure 8.4: the gap at the right end of the wall closes and one opens at the left end."""
    before = [(3, c) for c in range(0, 8)]
    after = [(3, c) for c in range(1, 9)]
    return GridMaze((5, 3), (0, 8), before, after, change_at, render_mode)


def shortcut_maze(change_at: int = 3000, render_mode: str | None = None) -> GridMaze:
    """Figure 8.5: a shorter path opens at the right end of the wall; the left one stays."""
    before = [(3, c) for c in range(1, 9)]
    after = [(3, c) for c in range(1, 8)]
    return GridMaze((5, 3), (0, 8), before, after, change_at, render_mode)


def register_mazes() -> None:
    for name, factory in (
        ("DynaMaze-v0", "dyna_maze"),
        ("BlockingMaze-v0", "blocking_maze"),
        ("ShortcutMaze-v0", "shortcut_maze"),
    ):
        env_id = f"mbrl_ai/{name}"
        if env_id not in gym.registry:
            gym.register(
                env_id, entry_point=f"mbrl_ai.envs.mazes:{factory}", max_episode_steps=None
            )


register_mazes()
