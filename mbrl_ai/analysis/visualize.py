"""What the world model imagines next to what really happens: ``python -m mbrl_ai.visualize <run>``.

    python -m mbrl_ai.visualize outputs/mbppo/CartPole-v1/<run> [--horizon 20] [--starts 4]

From the run's newest checkpoint, the trained policy plays one real episode (deterministic
actions, ``--seed``). From ``--starts`` states along it, every ensemble member is rolled out
open-loop for ``--horizon`` steps with the actions actually taken. Writes to ``--out`` (default:
the run directory). ``algo=dreamer`` runs filter the real episode with the posterior up to each
start, then roll the prior on with the episode's actions and decode every latent state (the band
is the range over latent samples):

- ``trajectories.png``: one panel per state dimension; the real trajectory in black, the ensemble
  mean of each imagined rollout in colour with the members' range as a band;
- ``model_error.png``: k-step open-loop error against k, in units of the state variance of the
  model's training data (Dreamer: of the episode's states): on the episode above (now), and as
  logged during training (``model/open_loop_mse_k`` of ``metrics.jsonl``) at the first, middle
  and last iteration.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from omegaconf import OmegaConf

from mbrl_ai.algos import get as get_algorithm
from mbrl_ai.algos import load_plugins, load_policy, to_config
from mbrl_ai.config import Config, ConfigError
from mbrl_ai.core.checkpoint import CheckpointError, read_checkpoint
from mbrl_ai.core.utils import read_jsonl
from mbrl_ai.envs import inspect_env, make_env, refuse_untrusted_module
from mbrl_ai.fit_model import build_world_model
from mbrl_ai.modules.actor import RecurrentPolicy
from mbrl_ai.modules.world_model import EnsembleWorldModel


def load_world_model(run_dir: Path, trust: bool = True) -> tuple[EnsembleWorldModel, Config]:
    """The world model of a run's newest checkpoint, with the run's config (``trust``: as in
    ``mbrl_ai.algos.load_policy``)."""
    state, _ = read_checkpoint(run_dir, with_arrays=False)
    cfg = to_config(OmegaConf.create(state["config"]))
    refuse_untrusted_module(cfg.env, trust)
    if "world_model" not in state["objects"]:
        raise CheckpointError(f"{run_dir}: algo={cfg.algo.name} has no world model to visualise")
    model = build_world_model(cfg.world_model, inspect_env(cfg.env, cfg.env_kwargs))
    model.load_state_dict(state["objects"]["world_model"])
    return model.eval(), cfg


def real_episode(run_dir: Path, seed: int, max_steps: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """States ``[T + 1, obs_dim]`` and actions ``[T, ...]`` of one episode of the trained policy."""
    actor, obs_rms, cfg = load_policy(run_dir)
    env = make_env(cfg.env, cfg.env_kwargs)
    obs, _ = env.reset(seed=seed)
    if isinstance(actor, RecurrentPolicy):  # Dreamer's: a fresh latent state
        actor.start(1)
    states, actions = [np.asarray(obs, dtype=np.float32)], []
    with torch.no_grad():
        for _ in range(max_steps):
            x = torch.as_tensor(states[-1])[None]
            if obs_rms is not None:
                x = obs_rms.normalize(x).float()
            action = actor.mode(x)[0].numpy()
            if not actor.discrete:
                assert isinstance(env.action_space, gym.spaces.Box)
                action = np.clip(action, env.action_space.low, env.action_space.high)
            obs, _, terminated, truncated, _ = env.step(action)
            actions.append(action)
            states.append(np.asarray(obs, dtype=np.float32))
            if terminated or truncated:
                break
    env.close()
    return np.stack(states), np.stack(actions)


@torch.no_grad()
def member_rollouts(
    model: EnsembleWorldModel,
    states: np.ndarray,
    actions: np.ndarray,
    start: int,
    horizon: int,
) -> np.ndarray:
    """Every member rolled out open-loop from ``states[start]`` with the real actions:
    ``[E, k + 1, obs_dim]`` (k = steps left in the episode, at most ``horizon``)."""
    k = min(horizon, len(actions) - start)
    e = model.ensemble_size
    s = torch.as_tensor(states[start]).expand(e, 1, -1).clone()
    out = [s[:, 0]]
    for t in range(start, start + k):
        a = torch.as_tensor(actions[t]).expand(e, 1, *np.shape(actions[t]))
        mean, _, _ = model(s, a)
        s = s + (mean * model.target_std + model.target_mean)[..., : model.obs_dim]
        out.append(s[:, 0])
    return torch.stack(out, 1).numpy()


@torch.no_grad()
def k_step_errors(
    model: EnsembleWorldModel, states: np.ndarray, actions: np.ndarray, horizon: int
) -> np.ndarray:
    """Mean squared open-loop error of the ensemble mean at k = 1..horizon from every state of
    the episode, per state dimension in units of the training data's std (NaN where no window
    of that length fits)."""
    paths = {s: member_rollouts(model, states, actions, s, horizon) for s in range(len(actions))}
    return open_loop_errors(paths, states, horizon, model.in_std[: model.obs_dim].numpy())


def open_loop_errors(
    paths: dict[int, np.ndarray], states: np.ndarray, horizon: int, std: np.ndarray
) -> np.ndarray:
    """Mean squared error at k = 1..horizon of the mean of each start's imagined paths, per
    state dimension in units of ``std`` (NaN where no window of that length fits)."""
    errors: list[list[float]] = [[] for _ in range(horizon)]
    for start, path in paths.items():
        mean_path = path.mean(0)
        for k in range(1, len(mean_path)):
            errors[k - 1].append(float((((mean_path[k] - states[start + k]) / std) ** 2).mean()))
    return np.array([np.mean(e) if e else np.nan for e in errors])


def plot_trajectories(
    states: np.ndarray,
    rollouts: dict[int, np.ndarray],
    path: Path,
    names: list[str] | None = None,
    band: str = "ensemble members",
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = states.shape[1]
    fig, axes = plt.subplots(d, 1, figsize=(8, 1.8 * d + 0.6), sharex=True, squeeze=False)
    colors = matplotlib.color_sequences["tab10"]
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(np.arange(len(states)), states[:, i], color="black", lw=1.4, label="real")
        for j, (start, paths) in enumerate(rollouts.items()):
            t = np.arange(start, start + paths.shape[1])
            c = colors[j % 10]
            ax.plot(
                t,
                paths[:, :, i].mean(0),
                color=c,
                lw=1.2,
                label=f"imagined from t={start}",
            )
            ax.fill_between(t, paths[:, :, i].min(0), paths[:, :, i].max(0), color=c, alpha=0.2)
        ax.set_ylabel(names[i] if names else f"s[{i}]", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=6, ncol=3)
    axes[-1, 0].set_xlabel("time step of the real episode")
    fig.suptitle(f"real vs imagined trajectories (band: range over {band})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def logged_open_loop(run_dir: Path) -> dict[int, np.ndarray]:
    """``model/open_loop_mse_k`` of metrics.jsonl at the first, middle and last iteration that
    logged it: {env_steps: errors for k = 1..}."""
    path = Path(run_dir) / "metrics.jsonl"
    rows = [m for m in (read_jsonl(path) if path.is_file() else []) if "model/open_loop_mse_1" in m]
    picked = {}
    for m in [rows[0], rows[len(rows) // 2], rows[-1]] if rows else []:
        ks = sorted(int(k.rsplit("_", 1)[1]) for k in m if k.startswith("model/open_loop_mse_"))
        picked[m["env_steps"]] = np.array([m[f"model/open_loop_mse_{k}"] for k in ks])
    return picked


def plot_model_error(now: np.ndarray, logged: dict[int, np.ndarray], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(
        np.arange(1, len(now) + 1),
        now,
        "o-",
        color="black",
        label="final model, episode above",
    )
    for steps, errors in logged.items():
        ax.plot(
            np.arange(1, len(errors) + 1),
            errors,
            ".--",
            label=f"during training, step {steps:,}",
        )
    ax.set_yscale("log")
    ax.set_xlabel("k (open-loop steps)")
    ax.set_ylabel("MSE per state dimension (÷ data variance)")
    ax.set_title("k-step model error", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def visualize(
    run_dir: Path,
    out_dir: Path | None = None,
    horizon: int = 20,
    starts: int = 4,
    seed: int = 0,
    trust: bool = True,
) -> tuple[Path, Path]:
    """Write ``trajectories.png`` and ``model_error.png`` for a run (see the module docstring)."""
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir
    out.mkdir(parents=True, exist_ok=True)
    state, _ = read_checkpoint(run_dir, with_arrays=False)
    cfg = to_config(OmegaConf.create(state["config"]))
    torch.set_num_threads(cfg.torch_threads)  # the run's own setting (small nets: few threads)
    own = get_algorithm(cfg.algo.name).open_loop
    if own is None:
        model, cfg = load_world_model(run_dir, trust)
    else:
        refuse_untrusted_module(cfg.env, trust)
    states, actions = real_episode(run_dir, seed)
    picks = [int(s) for s in np.linspace(0, max(len(actions) - horizon, 0), starts)]
    if own is None:
        rollouts = {s: member_rollouts(model, states, actions, s, horizon) for s in picks}
        errors = k_step_errors(model, states, actions, horizon)
    else:  # the algorithm's own world model (Dreamer's: decoded latent rollouts)
        info = inspect_env(cfg.env, cfg.env_kwargs)
        every = own(
            cfg, info, state["objects"], states, actions, list(range(len(actions))), horizon
        )
        rollouts = {s: every[s] for s in picks}
        errors = open_loop_errors(every, states, horizon, states.std(0) + 1e-8)
    names = {"CartPole-v1": ["cart position", "cart velocity", "pole angle", "pole velocity"]}
    return (
        plot_trajectories(
            states,
            rollouts,
            out / "trajectories.png",
            names.get(cfg.env),
            "ensemble members" if own is None else "latent samples, decoded",
        ),
        plot_model_error(errors, logged_open_loop(run_dir), out / "model_error.png"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mbrl_ai.visualize", description=__doc__.split("\n")[0]
    )
    parser.add_argument("run", type=Path, help="a run directory of an algorithm with a world model")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--horizon", type=int, default=20)
    parser.add_argument("--starts", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--trust", action="store_true", help="import a module the run's env id names"
    )
    args = parser.parse_args(argv)
    if args.horizon < 1 or args.starts < 1:
        print("error: --horizon and --starts must be >= 1", file=sys.stderr)
        return 2
    try:
        load_plugins()
        paths = visualize(args.run, args.out, args.horizon, args.starts, args.seed, args.trust)
    except (CheckpointError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
