"""The Dyna family against Sutton & Barto's chapter 8, and on toy-text tasks with exact evaluation.

    python experiments/dyna/run.py maze          # Figure 8.2: steps per episode, n = 0 / 5 / 50
    python experiments/dyna/run.py blocking      # Figure 8.4: Dyna-Q vs Dyna-Q+, wall moves at 1,000
    python experiments/dyna/run.py shortcut      # Figure 8.5: Dyna-Q vs Dyna-Q+, shortcut at 3,000
    python experiments/dyna/run.py sweeping      # Dyna Maze: updates until the greedy path is optimal
    python experiments/dyna/run.py taxi          # Taxi-v4: Dyna-Q (n 5) vs Q-learning, exact optimum
    python experiments/dyna/run.py frozenlake    # FrozenLake8x8-v1 (slippery), exact value

The maze studies drive :class:`mbrl_ai.algos.dyna_q.DynaQAgent` on the registered maze envs
directly (thousands of short runs, per-step records); the toy-text studies train through
``mbrl_ai.train.run`` (``algo=dyna_q``) and read each evaluation's exact return from
``eval.jsonl``. Each writes ``<study>.json``, ``<study>.md`` and a figure next to this file.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchlib import fmt_steps, median_with_ci  # noqa: E402

from mbrl_ai.algos.dyna_q import (
    DynaQAgent,  # noqa: E402
    DynaQConfig,  # noqa: E402
)
from mbrl_ai.core.utils import read_jsonl  # noqa: E402
from mbrl_ai.envs.tabular import policy_return, transition_table  # noqa: E402

HERE = Path(__file__).resolve().parent
ARGS = argparse.Namespace(name=None)  # the command line (main sets it)


def play(
    env_id: str, d: DynaQConfig, gamma: float, seed: int, *, episodes: int = 0, steps: int = 0
) -> tuple[list[int], np.ndarray, DynaQAgent, gym.Env]:
    """Run the agent for ``episodes`` episodes or ``steps`` real steps (whichever is given).
    Returns the episode lengths, the reward of every step, the agent and the env."""
    env = gym.make(env_id)
    n_states, n_actions = int(env.observation_space.n), int(env.action_space.n)
    agent = DynaQAgent(n_states, n_actions, d, gamma, seed)
    s, _ = env.reset(seed=seed)
    lengths, rewards, length = [], [], 0
    while (episodes and len(lengths) < episodes) or (steps and len(rewards) < steps):
        a = agent.act(int(s))
        s2, r, term, trunc, _ = env.step(a)
        agent.observe(int(s), a, float(r), int(s2), bool(term))
        rewards.append(r)
        length += 1
        s = s2
        if term or trunc:
            lengths.append(length)
            length = 0
            s, _ = env.reset()
    return lengths, np.array(rewards), agent, env


def write(name: str, table: str, data: dict) -> None:
    name = ARGS.name or name
    (HERE / f"{name}.md").write_text(table)
    (HERE / f"{name}.json").write_text(json.dumps(data, indent=1))
    print(table)


def figure(name: str, curves: dict[str, np.ndarray], xlabel: str, ylabel: str, **kw) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, (x, y) in curves.items():
        ax.plot(x, y, label=label)
    if "vline" in kw:
        ax.axvline(kw["vline"], color="grey", lw=0.8, ls=":")
    if "ylim" in kw:
        ax.set_ylim(*kw["ylim"])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(kw.get("title", name))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / f"{ARGS.name or name}.png", dpi=110)


def maze(args: argparse.Namespace) -> None:
    """Figure 8.2: mean steps per episode over ``runs`` runs of 50 episodes, n = 0, 5, 50."""
    curves, data = {}, {}
    rows = ["| n | episodes until mean steps per episode ≤ 20 | mean steps, episode 2 | episode 50 |",
            "|---|---|---|---|"]  # fmt: skip
    for n in (0, 5, 50):
        d = DynaQConfig(planning_steps=n, alpha=0.1, epsilon=0.1)
        runs = [play("mbrl_ai/DynaMaze-v0", d, 0.95, seed, episodes=50)[0]
                for seed in range(args.first_seed, args.first_seed + args.runs)]  # fmt: skip
        mean = np.mean(runs, 0)
        below = np.flatnonzero(mean <= 20)
        first = int(below[0]) + 1 if len(below) else None
        data[n] = {"mean_steps": mean.tolist(), "first_episode_le_20": first}
        rows.append(f"| {n} | {first} | {mean[1]:.1f} | {mean[-1]:.1f} |")
        curves[f"{n} planning steps"] = (np.arange(2, 51), mean[1:])
    table = (
        f"Dyna Maze, {args.runs} runs (seeds {args.first_seed}–"
        f"{args.first_seed + args.runs - 1}), α 0.1, ε 0.1, γ 0.95\n\n" + "\n".join(rows) + "\n"
    )
    write("maze", table, data)
    figure("maze", curves, "episodes", "steps per episode", ylim=(0, 800),
           title=f"Dyna Maze (Figure 8.2 protocol), mean of {args.runs} runs")  # fmt: skip


def changing(args: argparse.Namespace, name: str) -> None:
    """Figures 8.4 / 8.5: cumulative reward of Dyna-Q and Dyna-Q+ on a maze that changes."""
    # env, steps, the change, n, κ, the shortest path after the change
    env_id, steps, change, n, kappa, shortest = {
        "blocking": ("mbrl_ai/BlockingMaze-v0", 3000, 1000, 10, 1e-4, 16),
        "shortcut": ("mbrl_ai/ShortcutMaze-v0", 6000, 3000, 50, 1e-3, 10),
    }[name]
    curves, data = {}, {}
    rows = ["| method | cumulative reward at the change | at the end | gained after the change "
            "| runs whose greedy policy takes the new shortest path at the end |", "|---|---|---|---|---|"]  # fmt: skip
    for method in ("dyna_q", "dyna_q_plus"):
        d = DynaQConfig(method=method, planning_steps=n, alpha=1.0, epsilon=0.1, kappa=kappa)
        cumulative, shortcut = [], 0
        for seed in range(args.first_seed, args.first_seed + args.runs):
            _, rewards, agent, env = play(env_id, d, 0.95, seed, steps=steps)
            cumulative.append(np.cumsum(rewards))
            table = transition_table(env)
            assert table is not None
            # the greedy policy takes the new shortest path iff it reaches the goal that soon
            shortcut += policy_return(table, agent.greedy(), shortest) == 1.0
        mean = np.mean(cumulative, 0)
        gained = float(mean[-1] - mean[change - 1])
        data[method] = {
            "cumulative_reward": mean[::10].tolist(),
            "at_change": float(mean[change - 1]),
            "final": float(mean[-1]),
            "gained_after_change": gained,
            "greedy_takes_new_shortest_path": int(shortcut),
        }
        label = "Dyna-Q+" if method == "dyna_q_plus" else "Dyna-Q"
        rows.append(f"| {label} | {mean[change - 1]:.1f} | {mean[-1]:.1f} | {gained:.1f} "
                    f"| {shortcut}/{args.runs} |")  # fmt: skip
        curves[label] = (np.arange(1, steps + 1), mean)
    ratio = data["dyna_q_plus"]["gained_after_change"] / data["dyna_q"]["gained_after_change"]
    table = (
        f"{env_id}, {args.runs} runs, n {n}, α 1.0, ε 0.1, γ 0.95, κ {kappa}; the wall changes "
        f"at step {change}\n\n" + "\n".join(rows) + f"\n\nDyna-Q+ ÷ Dyna-Q, reward gained after "
        f"the change: {ratio:.2f}\n"
    )
    write(name, table, {**data, "gain_ratio": ratio})
    figure(name, curves, "time steps", "cumulative reward", vline=change,
           title=f"{env_id.split('/')[1]}, mean of {args.runs} runs")  # fmt: skip


def sweeping(args: argparse.Namespace) -> None:
    """Dyna Maze, n = 5: real steps and Q updates until the greedy path is the 14-step optimum,
    for Dyna-Q (uniform planning) and prioritized sweeping (Example 8.4's comparison)."""
    rows = ["| method | real steps until optimal: median [95% CI] | Q updates until optimal |",
            "|---|---|---|"]  # fmt: skip
    data = {}
    for method in ("dyna_q", "prioritized_sweeping"):
        d = DynaQConfig(method=method, planning_steps=5, alpha=0.1, epsilon=0.1)
        steps_needed, updates_needed = [], []
        for seed in range(args.first_seed, args.first_seed + args.runs):
            env = gym.make("mbrl_ai/DynaMaze-v0")
            table = transition_table(env)
            assert table is not None
            agent = DynaQAgent(54, 4, d, 0.95, seed)
            s, _ = env.reset(seed=seed)
            found = None
            for t in range(1, 20_001):
                a = agent.act(int(s))
                s2, r, term, _, _ = env.step(a)
                agent.observe(int(s), a, float(r), int(s2), bool(term))
                s = env.reset()[0] if term else s2
                if policy_return(table, agent.greedy(), 14) == 1.0:
                    found = t
                    break
            direct = found if method == "dyna_q" else 0  # sweeping's real updates are queued
            steps_needed.append(found or np.inf)
            updates_needed.append(agent.planning_updates + direct if found else np.inf)
        med, lo, hi = median_with_ci(steps_needed)
        label = "Dyna-Q" if method == "dyna_q" else "prioritized sweeping"
        rows.append(f"| {label} | {fmt_steps(med)} [{fmt_steps(lo)}, {fmt_steps(hi)}] "
                    f"| {fmt_steps(float(np.median(updates_needed)))} |")  # fmt: skip
        data[method] = {"steps": steps_needed, "updates": updates_needed}
    table = (
        f"Dyna Maze, n 5, α 0.1, ε 0.1, γ 0.95, {args.runs} runs: until the greedy policy reaches "
        "the goal in 14 steps (exact, from the maze's table)\n\n" + "\n".join(rows) + "\n"
    )
    write("sweeping", table, data)


def toy_text(args: argparse.Namespace, name: str) -> None:
    """Taxi-v4 / FrozenLake8x8-v1 through the CLI's training function, exact evaluations."""
    from mbrl_ai.train import compose_config, run

    arms = {
        "taxi": {
            "Dyna-Q (n 5)": ["experiment=dyna_q_taxi"],
            "Q-learning (n 0)": ["experiment=dyna_q_taxi", "dyna_q.planning_steps=0"],
        },
        "frozenlake": {
            "Dyna-Q (n 50, stochastic model)": ["experiment=dyna_q_frozenlake8x8"],
            "Q-learning (n 0)": ["experiment=dyna_q_frozenlake8x8", "dyna_q.planning_steps=0"],
        },
    }[name]
    # Taxi: the undiscounted 200-step return must equal the optimum; FrozenLake: the discounted
    # value within 1% of the discounted optimum (over 200 steps its optimum needs a policy that
    # changes with the steps left, which a greedy Q policy cannot be)
    key, best, tolerance = {
        "taxi": ("exact_return", "optimal_return", 1e-9),
        "frozenlake": ("discounted_value", "optimal_discounted_value", 0.01),
    }[name]
    rows = ["| arm | seeds reaching it | real steps: median [95% CI] | final value (median) "
            "| optimum | final return over the time limit (median) | its optimum |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    data: dict = {}
    for label, overrides in arms.items():
        reached, finals, curves = [], [], []
        for seed in range(args.first_seed, args.first_seed + args.runs):
            budget = [f"total_timesteps={args.budget}"] if args.budget else []
            cfg = compose_config([*overrides, *budget, f"seed={seed}", "logger.progress=off",
                                  "checkpoint_every=0"])  # fmt: skip
            with tempfile.TemporaryDirectory() as tmp:
                run(cfg, Path(tmp))
                evals = [e for e in read_jsonl(Path(tmp) / "eval.jsonl") if "env_steps" in e]
            optimum, horizon_optimum = evals[0][best], evals[0]["optimal_return"]
            ok = [e[key] >= optimum - tolerance * abs(optimum) for e in evals]
            first = next((e["env_steps"] for e, k in zip(evals, ok, strict=True) if k), np.inf)
            reached.append(first)
            finals.append((evals[-1][key], evals[-1]["exact_return"]))
            curves.append([(e["env_steps"], e[key], e["exact_return"]) for e in evals])
        med, lo, hi = median_with_ci(reached)
        n_ok = sum(np.isfinite(reached))
        value, ret = np.median(finals, 0)
        rows.append(f"| {label} | {n_ok}/{args.runs} | {fmt_steps(med)} [{fmt_steps(lo)}, "
                    f"{fmt_steps(hi)}] | {value:.4f} | {optimum:.4f} | {ret:.4f} "
                    f"| {horizon_optimum:.4f} |")  # fmt: skip
        data[label] = {"reached": reached, "final": finals, "curves": curves, "optimum": optimum}
    what = {
        "taxi": "whose greedy policy's exact return (undiscounted, 200-step limit) is the optimum",
        "frozenlake": f"whose greedy policy's exact discounted value (γ {cfg.gamma}) is within 1% "
        "of the optimal one",
    }[name]
    table = (
        f"{cfg.env}, seeds {args.first_seed}–{args.first_seed + args.runs - 1}: the first "
        f"evaluation {what} (exact: dynamic programming over the env's table)\n\n"
        + "\n".join(rows)
        + "\n"
    )
    write(name, table, data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "study", choices=["maze", "blocking", "shortcut", "sweeping", "taxi", "frozenlake"]
    )
    parser.add_argument("--runs", type=int, help="runs (seeds) per arm")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument(
        "--budget", type=int, help="taxi / frozenlake: real steps per run (default: the preset's)"
    )
    parser.add_argument("--name", help="write <name>.md/.json instead of <study>.md/.json")
    args = parser.parse_args()
    global ARGS
    ARGS = args
    default_runs = {"maze": 30, "blocking": 20, "shortcut": 20, "sweeping": 30}
    args.runs = args.runs or default_runs.get(args.study, 5)
    if args.study == "maze":
        maze(args)
    elif args.study in ("blocking", "shortcut"):
        changing(args, args.study)
    elif args.study == "sweeping":
        sweeping(args)
    else:
        toy_text(args, args.study)


if __name__ == "__main__":
    main()
