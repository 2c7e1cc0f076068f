"""Actor and critic: the hand-written distributions agree with torch.distributions."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from mbrl_ai.modules import Actor, Critic, RunningMeanStd


def test_categorical_log_prob_entropy_and_sampling() -> None:
    torch.manual_seed(0)
    actor = Actor(4, gym.spaces.Discrete(3), [16], "tanh", ortho_init=True)
    obs = torch.randn(5, 4)
    actions = torch.tensor([0, 1, 2, 1, 0])
    logp, ent = actor.evaluate(obs, actions)
    ref = torch.distributions.Categorical(logits=actor(obs))
    torch.testing.assert_close(logp, ref.log_prob(actions))
    torch.testing.assert_close(ent, ref.entropy())
    # Gumbel-max sampling follows the policy's probabilities
    with torch.no_grad():
        actor.net[-1].bias.copy_(torch.tensor([0.0, 1.0, 2.0]))
        actor.net[-1].weight.zero_()
        samples = torch.cat([actor.sample(torch.zeros(1000, 4))[0] for _ in range(20)])
    freq = torch.bincount(samples, minlength=3).float() / len(samples)
    torch.testing.assert_close(
        freq, torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0), atol=0.01, rtol=0
    )


def test_gaussian_log_prob_entropy_and_mode() -> None:
    torch.manual_seed(0)
    space = gym.spaces.Box(-2.0, 2.0, shape=(2,), dtype=np.float32)
    actor = Actor(3, space, [16], "relu", ortho_init=False, log_std_init=-0.5)
    obs = torch.randn(6, 3)
    action, logp = actor.sample(obs)
    ref = torch.distributions.Normal(actor(obs), actor.log_std.exp())
    torch.testing.assert_close(logp, ref.log_prob(action).sum(-1))
    logp2, ent = actor.evaluate(obs, action)
    torch.testing.assert_close(logp2, logp)
    torch.testing.assert_close(ent, ref.entropy().sum(-1))
    torch.testing.assert_close(actor.mode(obs), actor(obs))


def test_critic_shape_and_running_stats() -> None:
    assert Critic(4, [8, 8], "tanh", True)(torch.zeros(7, 4)).shape == (7,)
    rms = RunningMeanStd((2,))
    data = torch.randn(1000, 2, dtype=torch.float64) * torch.tensor([2.0, 0.5]) + 3.0
    for chunk in data.split(37):
        rms.update(chunk)
    torch.testing.assert_close(rms.mean, data.mean(0), atol=1e-3, rtol=0)
    torch.testing.assert_close(rms.var, data.var(0, unbiased=False), rtol=1e-3, atol=0)
