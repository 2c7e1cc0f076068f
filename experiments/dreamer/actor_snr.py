"""How much of a Dreamer checkpoint's actor gradient is signal: the gradient of ``--batches``
independent replayed batches, each imagined from as the run's update does, per estimator
(``dreamer.actor_grad``): experiments/dreamer/README.md, *Round 6*.

    python experiments/dreamer/actor_snr.py RUN_OR_CHECKPOINT_DIR [...] --batches 32

For each estimator, printed: the mean norm of one batch's gradient, the norm of their mean, and
the signal-to-noise ratio of one batch, |E g|² / E|g − E g|² (|E g|² estimated without bias as
|mean|² − noise / batches). Every estimator sees the same batches and imagination starts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from mbrl_ai.algos import to_config
from mbrl_ai.algos.dreamer import build_agent
from mbrl_ai.algos.dreamer.behavior import behavior_losses
from mbrl_ai.algos.dreamer.config import DreamerConfig
from mbrl_ai.algos.dreamer.replay import SequenceReplay
from mbrl_ai.algos.dreamer.world_model import Latent
from mbrl_ai.core.checkpoint import read_checkpoint
from mbrl_ai.envs import inspect_env


def gradients(
    path: Path, estimators: list[str], batches: int, seed: int
) -> dict[str, torch.Tensor]:
    """``{estimator: [batches, actor parameters]}`` at the checkpoint ``path``."""
    state, arrays = read_checkpoint(path)
    cfg = to_config(OmegaConf.create(state["config"]))
    if cfg.algo.name != "dreamer":
        raise SystemExit(f"error: {path}: a Dreamer run is needed")
    d, info = cfg.node(DreamerConfig), inspect_env(cfg.env, cfg.env_kwargs)
    agent = build_agent(d, info)
    agent.load_state_dict(state["objects"]["agent"])
    replay = SequenceReplay(d.buffer_size // cfg.n_envs, cfg.n_envs, info.obs_dim, info.action_dim)
    replay.load_state_dict(state["objects"]["replay"])
    replay.load_arrays({k[7:]: v for k, v in arrays.items() if k.startswith("replay/")})
    rng = np.random.default_rng(seed)
    spread = agent.return_norm.spread.clone()
    out: dict[str, list[torch.Tensor]] = {e: [] for e in estimators}
    for b in range(batches):
        t = {k: torch.as_tensor(v) for k, v in replay.sample(d.batch_size, d.seq_len, rng).items()}
        with torch.no_grad():
            _, seen, _ = agent.wm.loss(
                t["obs"], t["actions"], t["rewards"], t["is_first"], t["is_terminal"]
            )
        n = seen.latent.h.shape[0] * seen.latent.h.shape[1]
        pick = torch.as_tensor(rng.choice(n, min(d.imagine_starts or n, n), replace=False))
        start = Latent(seen.latent.h.flatten(0, 1)[pick], seen.latent.z.flatten(0, 1)[pick])
        start_cont = 1.0 - t["is_terminal"].flatten()[pick].float()
        for e in estimators:
            torch.manual_seed(seed * 100_003 + b)  # the same imagined latents for each estimator
            agent.return_norm.spread.copy_(spread)  # the run's scale, not this probe's
            actor_loss = behavior_losses(agent, start, start_cont, d, cfg.gamma, e)[0]
            agent.actor.zero_grad()
            actor_loss.backward()
            out[e].append(torch.cat([p.grad.flatten() for p in agent.actor.parameters()]))
    return {e: torch.stack(g) for e, g in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="run or checkpoint directories")
    parser.add_argument("--estimators", nargs="+", default=["reinforce", "all_actions"])
    parser.add_argument("--batches", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        "| checkpoint | estimator | one batch's gradient norm | norm of the mean | SNR of one batch |"
    )
    print("|---|---|---|---|---|")
    for path in args.checkpoints:
        for e, g in gradients(path, args.estimators, args.batches, args.seed).items():
            mean = g.mean(0)
            noise = float(((g - mean) ** 2).sum(1).mean())
            signal = float(mean.norm() ** 2) - noise / len(g)
            print(
                f"| {path} | {e} | {float(g.norm(dim=1).mean()):.4f} | {float(mean.norm()):.4f} "
                f"| {signal / noise:.3f} |"
            )


if __name__ == "__main__":
    main()
