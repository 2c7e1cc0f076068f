"""ŵφ: an ensemble of Gaussian MLPs that predict Δstate, reward and a done logit.

All members live in one module whose weights are shaped ``[E, in, out]``: one batched matmul per
layer runs the whole ensemble, with no Python loop over members. Inputs (observation, and action
one-hot for Discrete spaces) and regression targets (Δs = s' − s and r) are normalised with
statistics of the training data, so losses and the confidence built on them are in the same units
for every environment. Each member outputs a mean and a log-variance per target, the latter kept
between learned soft bounds (Chua et al., 2018), plus a termination logit.
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import nn

from mbrl_ai.modules.mlp import ACTIVATIONS

# the smallest std the input and target normalisation divides by (a constant feature stays finite)
NORMALIZER_STD_FLOOR = 1e-4


class EnsembleLinear(nn.Module):
    """E independent linear layers applied as one batched matmul: ``[E, B, in] → [E, B, out]``."""

    def __init__(self, ensemble_size: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)  # nn.Linear's default initialisation, per member
        self.weight = nn.Parameter(
            torch.empty(ensemble_size, in_dim, out_dim).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(ensemble_size, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleWorldModel(nn.Module):
    """E Gaussian MLPs over (s, a) predicting normalised [Δs, r] and a done logit."""

    in_mean: torch.Tensor
    in_std: torch.Tensor
    target_mean: torch.Tensor
    target_std: torch.Tensor

    def __init__(
        self,
        obs_dim: int,
        action_space: gym.Space,
        ensemble_size: int,
        hidden: list[int],
        activation: str,
        min_logvar: float,
        max_logvar: float,
        done_on_next_state: bool = False,
        done_hidden: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.obs_dim = obs_dim
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if isinstance(action_space, gym.spaces.Discrete):
            self.action_dim = int(action_space.n)
        else:
            assert action_space.shape is not None  # Box: the only other action space supported
            self.action_dim = int(math.prod(action_space.shape))
        self.ensemble_size = ensemble_size
        in_dim = obs_dim + self.action_dim
        self.target_dim = obs_dim + 1  # Δs and r

        layers: list[nn.Module] = []
        last = in_dim
        for width in hidden:
            layers += [
                EnsembleLinear(ensemble_size, last, width),
                ACTIVATIONS[activation](),
            ]
            last = width
        self.trunk = nn.Sequential(*layers)
        self.head = EnsembleLinear(ensemble_size, last, 2 * self.target_dim + 1)
        self.max_logvar = nn.Parameter(torch.full((self.target_dim,), float(max_logvar)))
        self.min_logvar = nn.Parameter(torch.full((self.target_dim,), float(min_logvar)))
        # world_model.done_input=next_state: the done probability is a classifier of the next state
        # alone (one per member), trained on real next states and applied to predicted ones; the
        # head's done logit is then unused
        self.done_net: nn.Sequential | None = None
        if done_on_next_state:
            done_layers: list[nn.Module] = []
            last = obs_dim
            for width in hidden if done_hidden is None else done_hidden:
                done_layers += [
                    EnsembleLinear(ensemble_size, last, width),
                    ACTIVATIONS[activation](),
                ]
                last = width
            self.done_net = nn.Sequential(*done_layers, EnsembleLinear(ensemble_size, last, 1))
        for name, size in (("in", in_dim), ("target", self.target_dim)):
            self.register_buffer(f"{name}_mean", torch.zeros(size))
            self.register_buffer(f"{name}_std", torch.ones(size))

    # -- normalisation --------------------------------------------------------------------------

    def model_input(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Raw (s, a) → the normalised input vector ``[..., obs_dim + action_dim]``."""
        if self.discrete:
            a = F.one_hot(actions.long(), self.action_dim).to(obs.dtype)
        else:
            a = actions.to(obs.dtype).reshape(*obs.shape[:-1], self.action_dim)
        return torch.cat([obs, a], dim=-1)

    def raw_targets(
        self, obs: torch.Tensor, next_obs: torch.Tensor, rewards: torch.Tensor
    ) -> torch.Tensor:
        """[Δs, r] in environment units, ``[..., obs_dim + 1]``."""
        return torch.cat([next_obs - obs, rewards.unsqueeze(-1)], dim=-1)

    @torch.no_grad()
    def set_normalizer(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        next_obs: torch.Tensor,
        rewards: torch.Tensor,
    ) -> None:
        """Fit input and target statistics to a dataset (std floored so constants stay finite)."""
        for name, data in (
            ("in", self.model_input(obs, actions)),
            ("target", self.raw_targets(obs, next_obs, rewards)),
        ):
            getattr(self, f"{name}_mean").copy_(data.mean(0))
            getattr(self, f"{name}_std").copy_(
                data.std(0).clamp_min(NORMALIZER_STD_FLOOR) if len(data) > 1 else 1.0
            )

    def normalized_targets(
        self, obs: torch.Tensor, next_obs: torch.Tensor, rewards: torch.Tensor
    ) -> torch.Tensor:
        return (self.raw_targets(obs, next_obs, rewards) - self.target_mean) / self.target_std

    # -- forward --------------------------------------------------------------------------------

    def forward(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean ``[E, B, D]``, log-variance ``[E, B, D]`` (normalised units) and done logit ``[E, B]``.

        ``obs`` is ``[B, obs_dim]`` (every member sees the same batch) or ``[E, B, obs_dim]``.
        """
        return self.forward_normalized(self.normalized_input(obs, actions))

    def normalized_input(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Raw (s, a) → the members' normalised input ``[..., obs_dim + action_dim]``: what
        :meth:`forward_normalized` takes. Row by row, so a fit can normalise its data once and
        gather minibatches from it."""
        return (self.model_input(obs, actions) - self.in_mean) / self.in_std

    def forward_normalized(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`forward` on normalised inputs ``[B, in]`` (every member) or ``[E, B, in]``."""
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.ensemble_size, -1, -1)
        out = self.head(self.trunk(x))
        d = self.target_dim
        mean, raw_logvar, done_logit = (
            out[..., :d],
            out[..., d : 2 * d],
            out[..., 2 * d],
        )
        logvar = self.max_logvar - F.softplus(self.max_logvar - raw_logvar)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        return mean, logvar, done_logit

    def next_state_done_logit(self, next_obs: torch.Tensor) -> torch.Tensor:
        """Each member's done logit ``[E, B]`` from next states ``[B, obs_dim]`` (every member sees
        them all) or ``[E, B, obs_dim]`` (member e sees row e); needs ``done_input=next_state``."""
        assert self.done_net is not None
        d = self.obs_dim
        x = (next_obs - self.in_mean[:d]) / self.in_std[:d]
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.ensemble_size, -1, -1)
        return self.done_net(x).squeeze(-1)

    def done_logit_from(self, done_logit: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """The done logit in use: the head's ``done_logit``, or the next-state classifier's on
        ``next_obs`` laid out like it (``[E, B, obs_dim]`` for ``[E, B]``)."""
        return done_logit if self.done_net is None else self.next_state_done_logit(next_obs)

    @torch.no_grad()
    def predict(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        members: torch.Tensor,
        sample: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step for a batch with every member computed: next state ``[B, obs_dim]``, reward
        ``[B]``, done probability ``[B]`` and disagreement ``[B]`` (variance of the members' means,
        averaged over state dimensions, in normalised units). Row ``i`` uses member ``members[i]``;
        ``sample`` draws from its Gaussian, otherwise its mean is used.
        """
        mean, logvar, done_logit = self(obs, actions)
        rows = torch.arange(obs.shape[0], device=obs.device)
        next_obs, reward = self._outputs(obs, mean[members, rows], logvar[members, rows], sample)
        disagreement = mean[..., : self.obs_dim].var(0, unbiased=False).mean(-1)
        if self.done_net is not None:
            done_logit = self.next_state_done_logit(next_obs)
        return next_obs, reward, torch.sigmoid(done_logit[members, rows]), disagreement

    @torch.no_grad()
    def step(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        sample: bool = True,
        disagreement: bool = False,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One imagination step: each row goes through one member drawn uniformly at random.

        With ``disagreement`` every member runs (:meth:`predict`) and the disagreement is returned.
        Without it only the drawn members run: the rows are dealt at random into E equal slots of
        ⌈B/E⌉ (one per member, the last partly empty), so one batched pass costs 1/E of the full
        ensemble and each row's member is still uniform. The disagreement is then ``None``.
        """
        n, e = obs.shape[0], self.ensemble_size
        if disagreement:
            members = torch.randint(0, e, (n,), device=obs.device, generator=generator)
            return self.predict(obs, actions, members, sample)
        per = -(-n // e)
        slots = torch.randperm(e * per, device=obs.device, generator=generator)[:n]
        layout = torch.zeros(e * per, dtype=torch.long, device=obs.device)
        layout[slots] = torch.arange(n, device=obs.device)
        a = actions[layout]
        mean, logvar, done_logit = self(
            obs[layout].view(e, per, obs.shape[-1]), a.view(e, per, *a.shape[1:])
        )

        def row(
            t: torch.Tensor,
        ) -> torch.Tensor:  # [E, per, ...] → the batch's rows [B, ...]
            return t.reshape(e * per, *t.shape[2:])[slots]

        next_obs, reward = self._outputs(obs, row(mean), row(logvar), sample)
        if self.done_net is not None:  # each member's classifier on the rows it predicted
            done_logit = self.next_state_done_logit(next_obs[layout].view(e, per, -1))
        return next_obs, reward, torch.sigmoid(row(done_logit)), None

    def _outputs(
        self, obs: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, sample: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Next state and reward in environment units from one member's normalised prediction."""
        pred = mean + torch.randn_like(mean) * (0.5 * logvar).exp() if sample else mean
        raw = pred * self.target_std + self.target_mean
        return obs + raw[:, : self.obs_dim], raw[:, -1]

    @torch.no_grad()
    def mean_step(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The ensemble-mean next state ``[B, obs_dim]`` (deterministic; for diagnostics)."""
        mean, _, _ = self(obs, actions)
        raw = mean.mean(0) * self.target_std + self.target_mean
        return obs + raw[:, : self.obs_dim]

    def logvar_bound_penalty(self) -> torch.Tensor:
        """Keeps the learned soft bounds tight (PETS)."""
        return self.max_logvar.sum() - self.min_logvar.sum()
