"""Planners over continuous action sequences in ``[-1, 1]^d``: random shooting, CEM, iCEM, MPPI."""

from __future__ import annotations

from typing import Any

import torch

from mbrl_ai.planners.base import Evaluate, register_planner, shift_continuous, top_k


class _Continuous:
    """What the continuous planners share: the sequence shape and the warm start."""

    def __init__(self, horizon: int, action_dim: int, device: torch.device) -> None:
        self.horizon, self.action_dim, self.device = horizon, action_dim, device

    def start(self, batch: int, warm: torch.Tensor | None) -> torch.Tensor:
        """The initial mean ``[B, H, d]``: the shifted previous plan, else the middle (zero)."""
        if warm is not None:
            return warm.clone()
        return torch.zeros(batch, self.horizon, self.action_dim, device=self.device)

    def noise(self, batch: int, n: int, generator: torch.Generator) -> torch.Tensor:
        shape = (batch, n, self.horizon, self.action_dim)
        return torch.randn(shape, device=self.device, generator=generator)

    def shift(self, plan: torch.Tensor) -> torch.Tensor:
        return shift_continuous(plan)


@register_planner("random", "continuous")
class RandomShooting(_Continuous):
    """``population`` uniform sequences (plus the warm start, when given); the best one."""

    @classmethod
    def from_config(cls, m: Any, size: int, device: torch.device) -> RandomShooting:
        return cls(m.horizon, size, m.population, device)

    def __init__(
        self, horizon: int, action_dim: int, population: int, device: torch.device
    ) -> None:
        super().__init__(horizon, action_dim, device)
        self.population = population

    def plan(
        self, evaluate: Evaluate, batch: int, warm: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        shape = (batch, self.population, self.horizon, self.action_dim)
        candidates = torch.rand(shape, device=self.device, generator=generator) * 2.0 - 1.0
        if warm is not None:
            candidates[:, 0] = warm
        return top_k(evaluate(candidates), candidates, 1)[:, 0]


@register_planner("cem", "continuous")
class CEM(_Continuous):
    """The cross-entropy method: sample from a diagonal Gaussian over the sequence, refit it to
    the ``elites`` best, smooth the refit with ``alpha`` (the weight of the old value), repeat
    ``iterations`` times; the plan is the final mean (the elites' mean, not the best sample)."""

    @classmethod
    def from_config(cls, m: Any, size: int, device: torch.device) -> CEM:
        return cls(
            m.horizon, size, m.population, m.elites, m.iterations, m.alpha, m.init_std, device
        )

    def __init__(
        self,
        horizon: int,
        action_dim: int,
        population: int,
        elites: int,
        iterations: int,
        alpha: float,
        init_std: float,
        device: torch.device,
    ) -> None:
        super().__init__(horizon, action_dim, device)
        self.population, self.elites, self.iterations = population, elites, iterations
        self.alpha, self.init_std = alpha, init_std

    def plan(
        self, evaluate: Evaluate, batch: int, warm: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        mean = self.start(batch, warm)
        std = torch.full_like(mean, self.init_std)
        kept: torch.Tensor | None = None
        for i in range(self.iterations):
            noise = self.sampling_noise(batch, i, generator)
            candidates = (mean.unsqueeze(1) + std.unsqueeze(1) * noise).clamp(-1.0, 1.0)
            if kept is not None:
                candidates = torch.cat([candidates, kept], dim=1)
            elites = top_k(evaluate(candidates), candidates, self.elites)
            kept = self.kept(elites)
            mean = self.alpha * mean + (1.0 - self.alpha) * elites.mean(1)
            std = self.alpha * std + (1.0 - self.alpha) * elites.std(1, unbiased=False)
        return mean

    def sampling_noise(
        self, batch: int, iteration: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Standard normal noise ``[B, N, H, d]`` for one iteration (white; N = population)."""
        return self.noise(batch, self.population, generator)

    def kept(self, elites: torch.Tensor) -> torch.Tensor | None:
        """Candidates carried into the next iteration (CEM: none)."""
        return None


def colored_noise(
    shape: tuple[int, ...], beta: float, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Gaussian noise ``[..., H, d]`` whose power spectrum along H falls as 1/f^beta (beta 0:
    white; 2: smooth, as iCEM uses), each sequence scaled to unit variance."""
    *lead, horizon, dim = shape
    freqs = torch.fft.rfftfreq(horizon, device=device)
    freqs[0] = freqs[1] if horizon > 1 else 1.0
    scale = freqs.pow(-beta / 2.0)
    n_freq = freqs.shape[0]
    spectrum_shape = (*lead, dim, n_freq)
    real = torch.randn(spectrum_shape, device=device, generator=generator)
    imag = torch.randn(spectrum_shape, device=device, generator=generator)
    signal = torch.fft.irfft(torch.complex(real, imag) * scale, n=horizon)  # [..., d, H]
    signal = signal / signal.std(dim=-1, keepdim=True).clamp_min(1e-8)
    return signal.transpose(-1, -2)


@register_planner("icem", "continuous")
class ICEM(CEM):
    """iCEM: CEM whose noise is coloured (``beta``), whose population shrinks by ``decay`` each
    iteration (never below twice the elites), and which carries a ``keep`` share of each
    iteration's elites into the next one's population."""

    @classmethod
    def from_config(cls, m: Any, size: int, device: torch.device) -> ICEM:
        return cls(
            m.horizon,
            size,
            m.population,
            m.elites,
            m.iterations,
            m.alpha,
            m.init_std,
            device,
            beta=m.icem_beta,
            decay=m.icem_decay,
            keep=m.icem_keep,
        )

    def __init__(
        self,
        horizon: int,
        action_dim: int,
        population: int,
        elites: int,
        iterations: int,
        alpha: float,
        init_std: float,
        device: torch.device,
        beta: float = 2.0,
        decay: float = 1.25,
        keep: float = 0.3,
    ) -> None:
        super().__init__(
            horizon, action_dim, population, elites, iterations, alpha, init_std, device
        )
        self.beta, self.decay, self.keep = beta, decay, keep

    def sampling_noise(
        self, batch: int, iteration: int, generator: torch.Generator
    ) -> torch.Tensor:
        n = max(int(self.population * self.decay**-iteration), 2 * self.elites)
        shape = (batch, n, self.horizon, self.action_dim)
        return colored_noise(shape, self.beta, generator, self.device)

    def kept(self, elites: torch.Tensor) -> torch.Tensor | None:
        return elites[:, : max(1, int(self.keep * self.elites))]


@register_planner("mppi", "continuous")
class MPPI(_Continuous):
    """Model-predictive path integral control: perturb the mean with Gaussian noise of std
    ``noise_std``, weight each sequence by exp(return / ``temperature``) and move the mean to the
    weighted average; ``iterations`` times."""

    @classmethod
    def from_config(cls, m: Any, size: int, device: torch.device) -> MPPI:
        return cls(
            m.horizon,
            size,
            m.population,
            m.iterations,
            m.mppi_noise_std,
            m.mppi_temperature,
            device,
        )

    def __init__(
        self,
        horizon: int,
        action_dim: int,
        population: int,
        iterations: int,
        noise_std: float,
        temperature: float,
        device: torch.device,
    ) -> None:
        super().__init__(horizon, action_dim, device)
        self.population, self.iterations = population, iterations
        self.noise_std, self.temperature = noise_std, temperature

    def plan(
        self, evaluate: Evaluate, batch: int, warm: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        mean = self.start(batch, warm)
        for _ in range(self.iterations):
            noise = self.noise(batch, self.population, generator) * self.noise_std
            candidates = (mean.unsqueeze(1) + noise).clamp(-1.0, 1.0)
            returns = evaluate(candidates)
            weights = torch.softmax((returns - returns.amax(1, keepdim=True)) / self.temperature, 1)
            mean = (weights[:, :, None, None] * candidates).sum(1)
        return mean
