"""Running mean and variance, held as buffers so they live in ``state_dict`` and checkpoints."""

from __future__ import annotations

import torch
from torch import nn


class RunningMeanStd(nn.Module):
    """Mean and variance of everything passed to ``update``, merged batch by batch (Chan et al.).

    The statistics are float64 on whatever device the module is moved to; inputs may come from
    any device (``update`` moves them to the statistics, ``normalize`` and ``scale`` answer on the
    input's device)."""

    mean: torch.Tensor
    var: torch.Tensor
    count: torch.Tensor

    def __init__(
        self, shape: tuple[int, ...] = (), epsilon: float = 1e-4, clip: float = 10.0
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        # epsilon as initial count keeps the first merge well defined, as in baselines' VecNormalize
        self.register_buffer("count", torch.tensor(epsilon, dtype=torch.float64))
        self.clip = clip

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge a batch ``[B, *shape]`` into the statistics."""
        x = x.to(self.mean.device, torch.float64).reshape(-1, *self.mean.shape)
        batch_mean, batch_var, n = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        m2 = self.var * self.count + batch_var * n + delta.pow(2) * self.count * n / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(x − mean) / std, clipped to ±clip."""
        std = torch.sqrt(self.var + 1e-8).to(x.device, x.dtype)
        return torch.clamp((x - self.mean.to(x.device, x.dtype)) / std, -self.clip, self.clip)

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """x / std, clipped to ±clip (reward scaling keeps the sign and the zero)."""
        std = torch.sqrt(self.var + 1e-8).to(x.device, x.dtype)
        return torch.clamp(x / std, -self.clip, self.clip)
