"""Deterministic evaluation on separate envs, and the ``python -m mbrl_ai.evaluate`` entry point.

    python -m mbrl_ai.evaluate run=<run dir> [episodes=20] [seed=123]

reloads the run's newest checkpoint and prints the mean and std of the evaluation return.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from gymnasium.vector import VectorEnv

from mbrl_ai.modules import Actor, RunningMeanStd


def evaluate_policy(
    actor: Actor,
    envs: VectorEnv,
    n_episodes: int,
    seed: int,
    obs_rms: RunningMeanStd | None = None,
    device: torch.device | None = None,
) -> np.ndarray:
    """Returns of ``n_episodes`` episodes with deterministic actions, spread over the vector env.

    Every call resets the envs with ``seed``, so successive evaluations of one run start from the
    same states and differ only by the policy.
    """
    device = device or torch.device("cpu")
    k = envs.num_envs
    quota = np.array([n_episodes // k + (i < n_episodes % k) for i in range(k)])
    finished: list[list[float]] = [[] for _ in range(k)]
    running = np.zeros(k)
    obs, _ = envs.reset(seed=seed)
    space = envs.single_action_space
    with torch.no_grad():
        while any(len(f) < q for f, q in zip(finished, quota, strict=True)):
            obs_t = torch.as_tensor(obs.reshape(k, -1), dtype=torch.float32)
            if obs_rms is not None:
                obs_t = obs_rms.normalize(obs_t).float()
            action = actor.mode(obs_t.to(device)).cpu().numpy()
            if not actor.discrete:
                action = np.clip(action, space.low, space.high)
            obs, reward, term, trunc, _ = envs.step(action)
            running += reward
            for i in np.flatnonzero(term | trunc):
                if len(finished[i]) < quota[i]:
                    finished[i].append(float(running[i]))
                running[i] = 0.0
    return np.array([r for f in finished for r in f])


def main(argv: list[str]) -> int:
    from mbrl_ai.agent import load_policy
    from mbrl_ai.checkpoint import CheckpointError
    from mbrl_ai.envs import make_vec_env

    args = dict(a.split("=", 1) for a in argv if "=" in a)
    unknown = set(args) - {"run", "episodes", "seed"}
    if "run" not in args or unknown or len(args) != len(argv):
        print(
            "usage: python -m mbrl_ai.evaluate run=<run dir> [episodes=N] [seed=S]", file=sys.stderr
        )
        return 2
    try:
        actor, obs_rms, cfg = load_policy(Path(args["run"]))
    except CheckpointError as exc:
        print(f"error: run={args['run']!r}: {exc}", file=sys.stderr)
        return 2
    episodes = int(args.get("episodes", cfg.eval_episodes))
    envs = make_vec_env(cfg.env, min(cfg.eval_n_envs, episodes), cfg.seed, cfg.vectorization)
    returns = evaluate_policy(
        actor, envs, episodes, int(args.get("seed", cfg.seed + 10_000)), obs_rms
    )
    envs.close()
    print(
        f"{cfg.env} {cfg.algo.name}: mean return {returns.mean():.2f} ± {returns.std():.2f} over {len(returns)} episodes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
