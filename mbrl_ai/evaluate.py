"""Deterministic evaluation on separate envs, and the ``python -m mbrl_ai.evaluate`` entry point.

    python -m mbrl_ai.evaluate run=<run dir> [episodes=20] [seed=123] [trust=true]

reloads the run's newest checkpoint and prints the mean and std of the evaluation return. A run
whose env id names a module (``module:Env-v0``) is refused unless ``trust=true``: importing it
would run code found where the command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mbrl_ai.algos import load_plugins, load_policy
from mbrl_ai.checkpoint import CheckpointError
from mbrl_ai.config import ConfigError
from mbrl_ai.envs import make_vec_env
from mbrl_ai.evaluation import EVAL_SEED_OFFSET, evaluate_policy

__all__ = ["evaluate_policy", "main"]


def main(argv: list[str]) -> int:
    args = dict(a.split("=", 1) for a in argv if "=" in a)
    unknown = set(args) - {"run", "episodes", "seed", "trust"}
    if "run" not in args or unknown or len(args) != len(argv):
        print(
            "usage: python -m mbrl_ai.evaluate run=<run dir> [episodes=N] [seed=S] [trust=true]",
            file=sys.stderr,
        )
        return 2
    if args.get("trust", "false") not in ("true", "false"):
        print(f"error: trust={args['trust']!r}: allowed: true, false", file=sys.stderr)
        return 2
    for key, low in (("episodes", 1), ("seed", 0)):
        value = args.get(key)
        if value is not None and not (value.isdigit() and int(value) >= low):
            print(f"error: {key}={value!r}: must be an integer >= {low}", file=sys.stderr)
            return 2
    try:
        load_plugins()
        actor, obs_rms, cfg = load_policy(Path(args["run"]), trust=args.get("trust") == "true")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CheckpointError as exc:
        print(f"error: run={args['run']!r}: {exc}", file=sys.stderr)
        return 2
    episodes = int(args.get("episodes", cfg.eval_episodes))
    envs = make_vec_env(
        cfg.env,
        min(cfg.eval_n_envs, episodes),
        cfg.seed,
        cfg.vectorization,
        cfg.env_kwargs,
        default_time_limit=cfg.eval_max_steps,
    )
    returns = evaluate_policy(
        actor, envs, episodes, int(args.get("seed", cfg.seed + EVAL_SEED_OFFSET)), obs_rms
    )
    envs.close()
    print(
        f"{cfg.env} {cfg.algo.name}: mean return {returns.mean():.2f} ± {returns.std():.2f} over {len(returns)} episodes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
