"""Imagined transitions per second against the number of rollouts imagined together.

CartPole-sized networks (policy and critic 64-64 tanh, a 5-member 128-128 SiLU ensemble), one
torch thread, 5-step rollouts, no predicted done (every rollout runs the full horizon), each batch
size timed over 200 calls after 20 warm-up calls.

    python experiments/sample_efficiency/imagine_throughput.py
"""

from __future__ import annotations

import time

import gymnasium as gym
import torch

from mbrl_ai.config import ImaginationConfig
from mbrl_ai.imagine import imagine_rollouts
from mbrl_ai.modules import Actor, Critic
from mbrl_ai.modules.world_model import EnsembleWorldModel


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    space = gym.spaces.Discrete(2)
    actor = Actor(4, space, [64, 64], "tanh", True)
    critic = Critic(4, [64, 64], "tanh", True)
    model = EnsembleWorldModel(4, space, 5, [128, 128], "silu", -10.0, 0.5).eval()
    with torch.no_grad():
        model.head.bias[..., -1] = -10.0  # done probability ~0: every rollout runs 5 steps
    cfg = ImaginationConfig(mode="fixed")
    print("| rollouts | ms per call | imagined transitions / s |\n|---|---|---|")
    for n in (50, 100, 500, 2000, 5000, 20000):
        start = 0.05 * torch.randn(n, 4)
        for _ in range(20):
            imagine_rollouts(actor, critic, model, start, 5, cfg)
        t, done = time.perf_counter(), 0
        for _ in range(200):
            done += imagine_rollouts(actor, critic, model, start, 5, cfg).n_transitions
        dt = time.perf_counter() - t
        print(f"| {n} | {dt / 200 * 1e3:.2f} | {done / dt:,.0f} |")


if __name__ == "__main__":
    main()
