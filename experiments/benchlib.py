"""What the study scripts share: one training run as a record, and the per-method summary rows.

Study scripts import it with ``sys.path.insert(0, <experiments dir>)``; it is not part of the
package.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mbrl_ai.config import Config
from mbrl_ai.core.errors import EndRun
from mbrl_ai.core.stats import bootstrap_ci, median_iqr, steps_to_threshold
from mbrl_ai.core.utils import read_jsonl
from mbrl_ai.runtime import RunContext, RunResult, watch_iterations
from mbrl_ai.train import run


@dataclass
class RunRecord:
    """One training run: its evaluation curve and timing."""

    method: str
    config: str
    seed: int
    steps: list[int] = field(default_factory=list)
    means: list[float] = field(default_factory=list)
    train_seconds: float = 0.0
    env_steps: int = 0
    threshold: float = 475.0
    imagined_ratio: float | None = None  # imagined transitions/s ÷ real collection steps/s (median)
    diagnostics: dict[str, float] = field(default_factory=dict)  # model metrics, median over iters
    stopped_when_solved: bool = False  # training ended at the iteration that met the criterion

    @property
    def solved_at(self) -> int | None:
        return steps_to_threshold(self.steps, self.means, self.threshold, consecutive=3)

    @property
    def throughput(self) -> float:
        """Real env steps per second of training (evaluation excluded)."""
        return self.env_steps / self.train_seconds

    @property
    def seconds_per_1k(self) -> float:
        return 1000.0 * self.train_seconds / self.env_steps


def solved_by_evals(threshold: float, consecutive: int = 3) -> Callable[[RunContext], bool]:
    """The studies' criterion: ``consecutive`` evaluations in a row with mean ≥ ``threshold``."""

    def solved(run: RunContext) -> bool:
        steps = [e["env_steps"] for e in run.evals]
        means = [e["mean_return"] for e in run.evals]
        return steps_to_threshold(steps, means, threshold, consecutive) is not None

    return solved


@contextmanager
def stop_when(solved: Callable[[RunContext], bool] | None) -> Iterator[None]:
    """Within the block, every training loop of the package ends its run after the iteration at
    which ``solved(run)`` first holds (``None``: no stop). Use with :func:`train_until`. The
    check draws no random numbers, so a stopped run is the same run as the full one up to the
    stop (:func:`mbrl_ai.runtime.watch_iterations`). Each process that trains must enter it."""
    if solved is None:
        yield
        return

    def watcher(run: RunContext) -> None:
        if solved(run):
            raise EndRun(run.result(), f"solved at real step {run.env_steps}")

    with watch_iterations(watcher):
        yield


def train_until(
    cfg: Config, out_dir: Path, solved: Callable[[RunContext], bool] | None
) -> RunResult:
    """``mbrl_ai.train.run``, ended early once ``solved`` holds (see :func:`stop_when`). The
    result of a stopped run has its real steps, training seconds and evaluations up to the stop."""
    with stop_when(solved):
        try:
            return run(cfg, out_dir)
        except EndRun as done:
            return done.result  # type: ignore[no-any-return]


DIAGNOSTICS = (
    "confidence",
    "model/done_precision",
    "model/done_recall",
    "imagined_transitions",
    "plan_ms_per_step",
    "model_steps_per_real_step",
)
OPEN_LOOP = "model/open_loop_mse_"


def run_mbrl_ai(
    cfg: Config,
    method: str,
    config: str,
    threshold: float = 475.0,
    stop_when_solved: bool = False,
    stop: Callable[[RunContext], bool] | None = None,
) -> RunRecord:
    """Train ``cfg`` with mbrl_ai in a temporary directory and keep what the studies need. With
    ``stop_when_solved``, training ends at the iteration whose evaluation makes it solved (three
    evaluations in a row ≥ ``threshold``); with ``stop``, at the iteration where it holds."""
    solved = stop or (solved_by_evals(threshold) if stop_when_solved else None)
    with tempfile.TemporaryDirectory() as tmp:
        result = train_until(cfg, Path(tmp), solved)
        metrics = read_jsonl(Path(tmp) / "metrics.jsonl")
    ratios = [
        m["imagined_steps_per_s"] / m["real_steps_per_s"]
        for m in metrics
        if m.get("imagined_steps_per_s") and m.get("real_steps_per_s")
    ]
    keys = dict.fromkeys(
        k for m in metrics for k in m if k in DIAGNOSTICS or k.startswith(OPEN_LOOP)
    )
    diagnostics = {
        k: float(np.median([m[k] for m in metrics if m.get(k) is not None])) for k in keys
    }
    return RunRecord(
        method,
        config,
        cfg.seed,
        steps=[e["env_steps"] for e in result.evals],
        means=[e["mean_return"] for e in result.evals],
        train_seconds=result.train_seconds,
        env_steps=result.env_steps,
        threshold=threshold,
        imagined_ratio=float(np.median(ratios)) if ratios else None,
        diagnostics=diagnostics,
        stopped_when_solved=(stop_when_solved or stop is not None)
        and result.env_steps < cfg.total_timesteps,
    )


def solved_steps(runs: list[RunRecord]) -> list[float]:
    """Steps to solve per run, ``inf`` for a run that never solved."""
    return [r.solved_at if r.solved_at is not None else np.inf for r in runs]


def median_with_ci(values: list[float]) -> tuple[float, float, float]:
    """Median and its 95% bootstrap interval over runs (``inf`` = unsolved counts as worst)."""
    med = median_iqr(values)[0]
    finite_cap = 10 * max([v for v in values if np.isfinite(v)] or [1.0])
    capped = [v if np.isfinite(v) else finite_cap for v in values]  # keep the bootstrap numeric
    low, high = bootstrap_ci(capped)
    fix = lambda x: np.inf if x >= finite_cap else x  # noqa: E731
    return med, fix(low), fix(high)


def plot_curves(
    records: list[RunRecord], path: Path, env_name: str, labels: dict[str, str]
) -> None:
    """Median eval curve and min–max band over seeds of every config × method; ``labels`` maps
    method names to legend names, and its order to line styles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    styles = dict(zip(labels, ["-", "--", ":", "-.", (0, (5, 1))], strict=False))
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    colors = dict(zip(dict.fromkeys(r.config for r in records), palette, strict=False))
    for config in colors:
        for method in labels:
            runs = [r for r in records if r.config == config and r.method == method]
            if not runs:
                continue
            n = min(len(r.means) for r in runs)
            curves = np.array([r.means[:n] for r in runs])
            steps = runs[0].steps[:n]
            label = f"{labels[method]}, {config}"
            ax.plot(steps, np.median(curves, 0), styles[method], color=colors[config], label=label)
            ax.fill_between(steps, curves.min(0), curves.max(0), color=colors[config], alpha=0.12)
    if records[0].threshold is not None and np.isfinite(records[0].threshold):
        ax.axhline(records[0].threshold, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("real environment steps")
    ax.set_ylabel("deterministic eval return")
    ax.set_title(f"{env_name}, median and range over {len({r.seed for r in records})} seeds")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


class SB3Policy:
    """A Stable-Baselines3 model's deterministic policy behind the interface ``evaluate_policy``
    expects (``discrete``: its actions are indices, else they are clipped to the bounds)."""

    def __init__(self, model, discrete: bool) -> None:  # noqa: ANN001
        self.model, self.discrete = model, discrete

    def mode(self, obs):  # noqa: ANN001, ANN201
        import torch

        action, _ = self.model.predict(obs.cpu().numpy(), deterministic=True)
        return torch.as_tensor(action)


def learn_sb3(model, cfg: Config, rec: RunRecord, discrete: bool, stop_when_solved: bool) -> None:  # noqa: ANN001
    """Train a Stable-Baselines3 ``model`` for ``cfg.total_timesteps`` with our evaluation protocol:
    every ``cfg.eval_every`` real steps, ``cfg.eval_episodes`` deterministic episodes on the
    evaluation envs (and seeds) our runs use, recorded in ``rec`` with the training seconds
    (evaluation excluded). With ``stop_when_solved`` it ends once ``rec`` is solved."""
    from stable_baselines3.common.callbacks import BaseCallback

    from mbrl_ai.envs import make_vec_env
    from mbrl_ai.runtime.evaluation import EVAL_SEED_OFFSET, evaluate_policy

    eval_envs = make_vec_env(
        cfg.env, min(cfg.eval_n_envs, cfg.eval_episodes), cfg.seed + EVAL_SEED_OFFSET
    )
    eval_seconds = 0.0
    policy = SB3Policy(model, discrete)

    class EvalEvery(BaseCallback):
        def _on_step(self) -> bool:
            nonlocal eval_seconds
            if self.num_timesteps % cfg.eval_every == 0:
                t = time.perf_counter()
                returns = evaluate_policy(
                    policy, eval_envs, cfg.eval_episodes, cfg.seed + EVAL_SEED_OFFSET
                )
                rec.steps.append(self.num_timesteps)
                rec.means.append(float(np.mean(returns)))
                eval_seconds += time.perf_counter() - t
                rec.stopped_when_solved = stop_when_solved and rec.solved_at is not None
            return not rec.stopped_when_solved  # False ends learn() here

    t0 = time.perf_counter()
    model.learn(cfg.total_timesteps, callback=EvalEvery())
    rec.train_seconds = time.perf_counter() - t0 - eval_seconds
    rec.env_steps = model.num_timesteps
    rec.stopped_when_solved &= model.num_timesteps < cfg.total_timesteps  # else it ran it all
    eval_envs.close()


def fmt_steps(x: float) -> str:
    return "inf" if not np.isfinite(x) else f"{x:,.0f}"


def add_seed_arguments(parser: argparse.ArgumentParser, seeds: int, solved: str) -> None:
    """``--seeds``, ``--first-seed`` and ``--stop-when-solved`` (its help ends in ``solved``), the
    same in every study script: a held-out seed range is one flag."""
    parser.add_argument("--seeds", type=int, default=seeds, help="how many seeds")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first..first+seeds-1")
    parser.add_argument("--stop-when-solved", action="store_true", help=f"end each run {solved}")
