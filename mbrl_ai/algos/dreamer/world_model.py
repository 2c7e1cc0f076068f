"""The Dreamer world model: a recurrent state-space model (RSSM) with an observation encoder and
decoder, a reward head and a continuation head, and its loss on replayed sequences.

The latent state is ``(h, z)``: ``h`` the GRU's deterministic state, ``z`` ``latents``
categorical variables of ``classes`` classes each (one-hot). Categorical latents, as in
DreamerV2/V3, rather than DreamerV1's Gaussian: their KL cannot blow up through a vanishing
variance, and the uniform mix keeps every class possible, which is what lets a small model learn
quickly without collapsing.

    h_t = GRU(h_{t-1}, [z_{t-1}, a_{t-1}])         (deterministic step)
    prior      p(z_t | h_t)                          (what imagination samples)
    posterior  q(z_t | h_t, embed(o_t))              (what observing samples)
    decoder    symlog(o_t) ≈ dec(h_t, z_t);  reward r_t ≈ rew(h_t, z_t);  P(continue) = cont(h_t, z_t)

The reward and observations are regressed in symlog space; both KL terms are clipped below at
``free_bits`` nats (KL balancing: ``kl_dynamics`` trains the prior, ``kl_representation`` the
posterior).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from mbrl_ai.algos.dreamer.config import DreamerConfig
from mbrl_ai.algos.dreamer.dist import (
    categorical_kl,
    mixed_probs,
    sample_one_hot,
    symexp,
    symlog,
)


def mlp(in_dim: int, hidden: int, layers: int, out_dim: int, zero_out: bool = False) -> nn.Module:
    """``layers`` × (Linear, LayerNorm, SiLU), then a linear head (zero-initialised if asked)."""
    mods: list[nn.Module] = []
    last = in_dim
    for _ in range(layers):
        mods += [nn.Linear(last, hidden), nn.LayerNorm(hidden), nn.SiLU()]
        last = hidden
    head = nn.Linear(last, out_dim)
    if zero_out:
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
    return nn.Sequential(*mods, head)


@dataclass
class Latent:
    """A batch of latent states: ``h [..., deter]`` and one-hot ``z [..., latents, classes]``."""

    h: torch.Tensor
    z: torch.Tensor

    def feat(self) -> torch.Tensor:
        """What the heads, the actor and the critic read: ``[h, flat z]``."""
        return torch.cat([self.h, self.z.flatten(-2)], -1)

    def detach(self) -> Latent:
        return Latent(self.h.detach(), self.z.detach())


@dataclass
class Observed:
    """What observing a batch of sequences gives: the posterior states and both distributions."""

    latent: Latent  # [B, T, ...]
    post: torch.Tensor  # posterior probabilities [B, T, latents, classes]
    prior: torch.Tensor  # prior probabilities [B, T, latents, classes]


class RSSM(nn.Module):
    def __init__(self, d: DreamerConfig, embed_dim: int, action_dim: int) -> None:
        super().__init__()
        self.deter, self.latents, self.classes, self.unimix = (
            d.deter,
            d.latents,
            d.classes,
            d.unimix,
        )
        stoch = d.latents * d.classes
        self.img_in = nn.Sequential(
            nn.Linear(stoch + action_dim, d.hidden), nn.LayerNorm(d.hidden), nn.SiLU()
        )
        self.gru = nn.GRUCell(d.hidden, d.deter)
        self.prior_net = mlp(d.deter, d.hidden, 1, stoch)
        self.post_net = mlp(d.deter + embed_dim, d.hidden, 1, stoch)

    def initial(self, batch: int, device: torch.device) -> Latent:
        return Latent(
            torch.zeros(batch, self.deter, device=device),
            torch.zeros(batch, self.latents, self.classes, device=device),
        )

    def _probs(self, logits: torch.Tensor) -> torch.Tensor:
        return mixed_probs(logits.unflatten(-1, (self.latents, self.classes)), self.unimix)

    def deterministic(self, state: Latent, action: torch.Tensor) -> torch.Tensor:
        """h_t from the previous state and the action taken in it."""
        return self.gru(self.img_in(torch.cat([state.z.flatten(-2), action], -1)), state.h)

    def prior(self, h: torch.Tensor) -> torch.Tensor:
        return self._probs(self.prior_net(h))

    def img_step(
        self, state: Latent, action: torch.Tensor, generator: torch.Generator | None = None
    ) -> Latent:
        """One imagined step: the next state with z drawn from the prior."""
        h = self.deterministic(state, action)
        return Latent(h, sample_one_hot(self.prior(h), generator))

    def obs_step(
        self,
        state: Latent,
        action: torch.Tensor,
        embed: torch.Tensor,
        is_first: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[Latent, torch.Tensor]:
        """One observed step: zero the state and action where an episode begins, step h, draw z
        from the posterior. Returns the new state and the posterior's probabilities."""
        keep = (~is_first).to(embed.dtype).unsqueeze(-1)
        state = Latent(state.h * keep, state.z * keep.unsqueeze(-1))
        h = self.deterministic(state, action * keep)
        post = self._probs(self.post_net(torch.cat([h, embed], -1)))
        return Latent(h, sample_one_hot(post, generator)), post

    def observe(
        self, embed: torch.Tensor, actions: torch.Tensor, is_first: torch.Tensor
    ) -> Observed:
        """Posterior states of sequences ``embed [B, T, E]``, ``actions [B, T, A]`` (the action
        that led to each step) and ``is_first [B, T]`` (the first step always counts as one).
        The prior is evaluated on all steps at once after the recurrence."""
        b, t = embed.shape[:2]
        is_first = is_first.clone()
        is_first[:, 0] = True
        state = self.initial(b, embed.device)
        hs, zs, posts = [], [], []
        for i in range(t):
            state, post = self.obs_step(state, actions[:, i], embed[:, i], is_first[:, i])
            hs.append(state.h)
            zs.append(state.z)
            posts.append(post)
        h = torch.stack(hs, 1)
        return Observed(Latent(h, torch.stack(zs, 1)), torch.stack(posts, 1), self.prior(h))


class WorldModel(nn.Module):
    """Encoder, RSSM, decoder, reward and continuation heads."""

    def __init__(self, d: DreamerConfig, obs_dim: int, action_dim: int) -> None:
        super().__init__()
        self.encoder = mlp(obs_dim, d.hidden, d.model_layers, d.hidden)
        self.rssm = RSSM(d, d.hidden, action_dim)
        feat = d.deter + d.latents * d.classes
        self.decoder = mlp(feat, d.hidden, d.model_layers, obs_dim)
        self.reward = mlp(feat, d.hidden, d.model_layers, 1, zero_out=True)
        self.cont = mlp(feat, d.hidden, d.model_layers, 1)
        self.free_bits = d.free_bits
        self.kl_dynamics, self.kl_representation = d.kl_dynamics, d.kl_representation

    @property
    def feat_dim(self) -> int:
        return self.rssm.deter + self.rssm.latents * self.rssm.classes

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encoder(symlog(obs))

    def predicted_reward(self, feat: torch.Tensor) -> torch.Tensor:
        """The reward head's prediction, in reward units (it regresses symlog rewards)."""
        return symexp(self.reward(feat).squeeze(-1))

    def continuation(self, feat: torch.Tensor) -> torch.Tensor:
        """P(the episode goes on after this state)."""
        return torch.sigmoid(self.cont(feat).squeeze(-1))

    def decode(self, feat: torch.Tensor) -> torch.Tensor:
        """The decoded observation, in observation units."""
        return symexp(self.decoder(feat))

    def loss(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        rewards: torch.Tensor,
        is_first: torch.Tensor,
        is_terminal: torch.Tensor,
    ) -> tuple[torch.Tensor, Observed, dict[str, torch.Tensor]]:
        """The world-model loss of a batch of sequences ``[B, T, ...]``, the posterior states
        (for imagination) and the loss terms (detached)."""
        seen = self.rssm.observe(self.embed(obs), actions, is_first)
        feat = seen.latent.feat()
        decoder = (self.decoder(feat) - symlog(obs)).pow(2).sum(-1).mean()
        reward = (self.reward(feat).squeeze(-1) - symlog(rewards)).pow(2).mean()
        cont = F.binary_cross_entropy_with_logits(
            self.cont(feat).squeeze(-1), 1.0 - is_terminal.to(feat.dtype)
        )
        dyn = categorical_kl(seen.post.detach(), seen.prior)
        rep = categorical_kl(seen.post, seen.prior.detach())
        kl_dyn = dyn.clamp_min(self.free_bits).mean()
        kl_rep = rep.clamp_min(self.free_bits).mean()
        total = (
            decoder + reward + cont + self.kl_dynamics * kl_dyn + self.kl_representation * kl_rep
        )
        terms = {
            "decoder_loss": decoder,
            "reward_loss": reward,
            "cont_loss": cont,
            "kl": dyn.mean(),
            "model_loss": total,
        }
        return total, seen, {k: v.detach() for k, v in terms.items()}
