"""The distributions the Dreamer agent draws from and scores with: symlog, categorical latents
with a uniform mix and straight-through samples, the two-hot value distribution, and the
actor's action distributions. Every sampler takes an optional ``torch.Generator``."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x)·log(1 + |x|): compresses large magnitudes, linear near 0."""
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`symlog`."""
    return torch.sign(x) * torch.expm1(x.abs())


def mixed_probs(logits: torch.Tensor, unimix: float) -> torch.Tensor:
    """softmax(logits) mixed with the uniform distribution: (1 − u)·p + u / classes."""
    probs = logits.softmax(-1)
    if unimix > 0:
        probs = (1.0 - unimix) * probs + unimix / logits.shape[-1]
    return probs


def sample_one_hot(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One-hot samples of the categoricals ``probs [..., C]``, with straight-through gradients
    (the sample's value, the probabilities' gradient)."""
    flat = probs.reshape(-1, probs.shape[-1])
    index = torch.multinomial(flat.detach(), 1, generator=generator).squeeze(-1)
    one_hot = F.one_hot(index, probs.shape[-1]).to(probs.dtype).reshape(probs.shape)
    return one_hot + (probs - probs.detach())  # exactly the sample in value


def categorical_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) of categoricals ``[..., latents, classes]``, summed over the latents."""
    return (p * (p.clamp_min(1e-12).log() - q.clamp_min(1e-12).log())).sum((-2, -1))


class TwoHot:
    """A distribution over ``bins`` evenly spaced symlog values in [-20, 20] (DreamerV3's
    critic): targets are spread over their two nearest bins; the mean is taken in symlog space
    and mapped back with :func:`symexp`."""

    def __init__(self, bins: int, low: float = -20.0, high: float = 20.0) -> None:
        self.bins = bins
        self.low, self.high = low, high

    def grid(self, like: torch.Tensor) -> torch.Tensor:
        return torch.linspace(self.low, self.high, self.bins, device=like.device, dtype=like.dtype)

    def mean(self, logits: torch.Tensor) -> torch.Tensor:
        """The expected value (in the target's units) of the distributions ``[..., bins]``."""
        return symexp((logits.softmax(-1) * self.grid(logits)).sum(-1))

    def encode(self, target: torch.Tensor) -> torch.Tensor:
        """Two-hot weights ``[..., bins]`` of ``symlog(target)`` (clipped to the grid)."""
        x = symlog(target).clamp(self.low, self.high)
        pos = (x - self.low) / (self.high - self.low) * (self.bins - 1)
        below = pos.floor().clamp(0, self.bins - 2)
        frac = (pos - below).unsqueeze(-1)
        below_hot = F.one_hot(below.long(), self.bins).to(target.dtype)
        above_hot = F.one_hot(below.long() + 1, self.bins).to(target.dtype)
        return below_hot * (1.0 - frac) + above_hot * frac

    def nll(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """−log-likelihood of ``target [...]`` (cross-entropy against its two-hot weights)."""
        return -(self.encode(target.detach()) * logits.log_softmax(-1)).sum(-1)


class ActionDist:
    """The actor's distribution over normalised actions: a categorical with a uniform mix over
    ``n`` actions (one-hot samples), or a Gaussian whose mean is tanh-bounded and whose standard
    deviation lies in [0.1, 1] (samples clipped to [-1, 1], as DreamerV3's)."""

    MIN_STD, MAX_STD = 0.1, 1.0

    def __init__(self, out: torch.Tensor, discrete: bool, unimix: float) -> None:
        self.discrete = discrete
        if discrete:
            self.probs = mixed_probs(out, unimix)
        else:
            mean, std = out.chunk(2, -1)
            self.mean = torch.tanh(mean)
            self.std = (self.MAX_STD - self.MIN_STD) * torch.sigmoid(std + 2.0) + self.MIN_STD

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """A sample: one-hot (straight-through) or reparameterised and clipped to [-1, 1]."""
        if self.discrete:
            return sample_one_hot(self.probs, generator)
        noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device)
        x = self.mean + self.std * noise
        # clip the value, keep the reparameterised gradient (as a straight-through estimator)
        return x + (x.clamp(-1.0, 1.0) - x).detach()

    def mode(self) -> torch.Tensor:
        if self.discrete:
            return F.one_hot(self.probs.argmax(-1), self.probs.shape[-1]).to(self.probs.dtype)
        return self.mean

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        if self.discrete:
            return (action.detach() * self.probs.log()).sum(-1)
        z = (action.detach() - self.mean) / self.std
        return (-0.5 * z.pow(2) - self.std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)

    def entropy(self) -> torch.Tensor:
        if self.discrete:
            return -(self.probs * self.probs.log()).sum(-1)
        return (self.std.log() + 0.5 * math.log(2 * math.pi * math.e)).sum(-1)
