"""How long a Dreamer checkpoint's mode policy balances CartPole-v1 without its 500-step limit,
when its latent state is filtered over the whole episode and over only the last K real steps
(``dreamer.act_context``): the probe of experiments/dreamer/README.md, *Round 4*.

    python experiments/dreamer/probe_context.py RUN_OR_CHECKPOINT_DIR [...] --contexts 0 32

Each checkpoint plays the same ``--episodes`` episodes (reset with ``--seed``) once per context,
up to ``--limit`` steps; printed: how many lasted the limit, and the median and shortest length.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from mbrl_ai.algos import load_policy
from mbrl_ai.algos.dreamer.policy import DreamerPolicy


def lengths(policy: DreamerPolicy, episodes: int, limit: int, seed: int) -> np.ndarray:
    """Episode lengths of the policy's mode actions in ``episodes`` CartPole-v1 envs, each
    played once up to ``limit`` steps."""

    def make() -> gym.Env:
        return gym.wrappers.TimeLimit(gym.make("CartPole-v1").unwrapped, limit)

    envs = gym.vector.SyncVectorEnv([make for _ in range(episodes)])
    obs, _ = envs.reset(seed=seed)
    policy.start(episodes)
    alive = np.ones(episodes, dtype=bool)
    length = np.zeros(episodes, dtype=int)
    with torch.no_grad():
        while alive.any():
            action = policy.mode(torch.as_tensor(obs, dtype=torch.float32)).numpy()
            obs, _, term, trunc, _ = envs.step(action)
            length += alive
            alive &= ~(term | trunc)
    envs.close()
    return length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="run or checkpoint directories")
    parser.add_argument("--contexts", nargs="+", type=int, default=[0, 32])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--limit", type=int, default=2000, help="steps per episode at most")
    parser.add_argument("--seed", type=int, default=12345, help="the episodes' reset seed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for path in args.checkpoints:
        policy, _, cfg = load_policy(path)
        if cfg.algo.name != "dreamer" or cfg.env != "CartPole-v1":
            raise SystemExit(f"error: {path}: a Dreamer run on CartPole-v1 is needed")
        assert isinstance(policy, DreamerPolicy)
        for k in args.contexts:
            policy.context = k
            n = lengths(policy, args.episodes, args.limit, args.seed)
            print(
                f"{path}  context {k}: {int((n == args.limit).sum())} of {len(n)} lasted "
                f"{args.limit} steps, median {int(np.median(n))}, shortest {int(n.min())}"
            )


if __name__ == "__main__":
    main()
