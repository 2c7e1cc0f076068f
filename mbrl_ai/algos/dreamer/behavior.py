"""Behaviour learning in imagination: the actor and the critic of the Dreamer agent, trained only
on latent trajectories that the world model imagines from the posterior states of a replayed
batch.

    from every posterior state s_0 of the batch, roll the actor through the prior for H steps
    rewards r_t, continuations c_t from the heads at s_t (t = 1..H); values v_t from the slow critic
    λ-returns  R_H = v_H,  R_t = r_{t+1} + γ c_{t+1} ((1 − λ) v_{t+1} + λ R_{t+1})
    weights    w_0 = 1 − terminal(s_0),  w_t = w_{t−1} γ c_t    (imagined episodes that ended count less)
    S ← EMA of the 5th–95th percentile range of R;  scale = max(1, S)
    actor:  reinforce  −w_t [log π(a_t | s_t) sg((R_t − v_t) / scale) + η H(π(s_t))]
            dynamics   −w_t [R_t / scale + η H(π(s_t))]      (gradient through the world model)
            all_actions  −w_t [Σ_a π(a | s_t) sg((Q(s_t, a) − Σ_b π(b | s_t) Q(s_t, b)) / scale)
                         + η H(π(s_t))],  Q(s, a) = r(s') + γ c(s') v_slow(s'), s' one imagined
                         step from s with a   (Discrete actions: every action scored, none sampled)
    critic: two-hot −log p(R_t | s_t) − reg · log p(v_slow(s_t) | s_t), weighted by w_t
            + replay_critic · −log p(R^replay_t | s_t) on the replayed posterior states, R^replay
            the λ-returns of the real rewards bootstrapped from the imagined R_0 (slow critic
            where no imagination started)
    slow critic ← τ critic + (1 − τ) slow critic
    averaged actor ← τ' actor + (1 − τ') averaged actor   (with ``actor_ema`` τ' > 0: it acts)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from mbrl_ai.algos.dreamer.config import DreamerConfig
from mbrl_ai.algos.dreamer.dist import ActionDist, TwoHot
from mbrl_ai.algos.dreamer.world_model import Latent, WorldModel, mlp


class DreamerActor(nn.Module):
    """π(a | h, z): a categorical over ``action_dim`` actions or a bounded Gaussian over
    normalised actions in [-1, 1]."""

    def __init__(self, d: DreamerConfig, feat_dim: int, action_dim: int, discrete: bool) -> None:
        super().__init__()
        self.discrete, self.action_dim, self.unimix = discrete, action_dim, d.unimix
        self.net = mlp(feat_dim, d.hidden, d.layers, action_dim if discrete else 2 * action_dim)

    def forward(self, feat: torch.Tensor) -> ActionDist:
        return ActionDist(self.net(feat), self.discrete, self.unimix)


class DreamerCritic(nn.Module):
    """v(h, z) as a two-hot distribution over symlog values (zero-initialised: v = 0 at first)."""

    def __init__(self, d: DreamerConfig, feat_dim: int) -> None:
        super().__init__()
        self.dist = TwoHot(d.bins)
        self.net = mlp(feat_dim, d.hidden, d.layers, d.bins, zero_out=True)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """Logits ``[..., bins]``."""
        return self.net(feat)

    def value(self, feat: torch.Tensor) -> torch.Tensor:
        return self.dist.mean(self.net(feat))


class ReturnNorm(nn.Module):
    """An EMA of the 5th–95th percentile range of the λ-returns; returns are divided by
    max(1, range), so small returns are not blown up."""

    spread: torch.Tensor

    def __init__(self, decay: float) -> None:
        super().__init__()
        self.decay = decay
        self.register_buffer("spread", torch.zeros(()))

    def update(self, returns: torch.Tensor) -> torch.Tensor:
        """Fold in a batch of returns; the scale to divide by."""
        x = returns.detach().flatten().float()
        low, high = torch.quantile(x, torch.tensor([0.05, 0.95], device=x.device))
        self.spread.mul_(self.decay).add_((1.0 - self.decay) * (high - low))
        return self.spread.clamp_min(1.0)


def lambda_returns(
    rewards: torch.Tensor, discounts: torch.Tensor, values: torch.Tensor, lam: float
) -> torch.Tensor:
    """λ-returns ``[H, N]`` of imagined steps 0..H-1: ``rewards [H, N]`` and ``discounts [H, N]``
    (γ·continuation) of reaching steps 1..H, ``values [H + 1, N]`` of steps 0..H."""
    out = []
    last = values[-1]
    for t in reversed(range(len(rewards))):
        last = rewards[t] + discounts[t] * ((1.0 - lam) * values[t + 1] + lam * last)
        out.append(last)
    return torch.stack(out[::-1])


def replay_returns(
    rewards: torch.Tensor,
    is_terminal: torch.Tensor,
    is_first: torch.Tensor,
    values: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """λ-returns ``[B, T]`` along replayed sequences of real rewards and terminations, bootstrapped
    from ``values [B, T]``, and the mask of the steps that have one. A step whose successor is the
    first of another episode bootstraps from its own value (a time limit cut it) and, like a
    terminal step and the last step of a chunk, is masked out."""
    cont = 1.0 - is_terminal.to(values.dtype)
    last = values[:, -1]
    out = [last]
    for t in reversed(range(values.shape[1] - 1)):
        step = rewards[:, t + 1] + gamma * cont[:, t + 1] * (
            (1.0 - lam) * values[:, t + 1] + lam * last
        )
        last = torch.where(is_first[:, t + 1], values[:, t], step)
        out.append(last)
    mask = torch.zeros_like(values)
    mask[:, :-1] = (~is_first[:, 1:]).to(values.dtype) * cont[:, :-1]
    return torch.stack(out[::-1], 1), mask


def imagined_weights(cont: torch.Tensor, start_cont: torch.Tensor, gamma: float) -> torch.Tensor:
    """Loss weights ``[H, N]`` of imagined steps 0..H-1: 1 − terminal at the start, then γ·c per
    step, so steps after an imagined episode end count (almost) nothing."""
    discounts = torch.cat([torch.ones_like(cont[:1]), gamma * cont[:-1]])
    return (start_cont.unsqueeze(0) * torch.cumprod(discounts, 0)).detach()


@dataclass
class Imagined:
    """An imagined batch: latent states and their features ``[H + 1, N, ...]``, actions
    ``[H, N, A]``, and the actor's log-probabilities and entropies of steps 0..H-1 ``[H, N]``
    (differentiable in the actor)."""

    latent: Latent
    feat: torch.Tensor
    actions: torch.Tensor
    log_prob: torch.Tensor
    entropy: torch.Tensor


def imagine(
    wm: WorldModel, actor: DreamerActor, start: Latent, horizon: int, dynamics: bool
) -> Imagined:
    """Roll the actor through the prior for ``horizon`` steps from ``start [N, ...]``. The
    actor's distributions keep their gradient; with ``dynamics`` the whole trajectory is
    differentiable in the actor's parameters (the caller freezes the world model's own)."""
    state, feats, actions, log_probs, entropies = start, [start.feat()], [], [], []
    states = [start]
    for _ in range(horizon):
        dist = actor(feats[-1] if dynamics else feats[-1].detach())
        with torch.set_grad_enabled(dynamics):
            action = dist.sample()
            state = wm.rssm.img_step(state, action)
        log_probs.append(dist.log_prob(action))
        entropies.append(dist.entropy())
        feats.append(state.feat())
        actions.append(action)
        states.append(state)
    latent = Latent(torch.stack([s.h for s in states]), torch.stack([s.z for s in states]))
    return Imagined(
        latent,
        torch.stack(feats),
        torch.stack(actions),
        torch.stack(log_probs),
        torch.stack(entropies),
    )


@torch.no_grad()
def action_values(agent: DreamerAgent, state: Latent, gamma: float) -> torch.Tensor:
    """Q(s, a) ``[..., A]`` of every discrete action at the latent states ``state [...]``: the
    state s' that one imagined step with ``a`` reaches, scored r(s') + γ·c(s')·v_slow(s')."""
    lead = state.h.shape[:-1]
    flat = Latent(state.h.flatten(0, -2), state.z.flatten(0, -3))
    one_hots = torch.eye(agent.actor.action_dim, device=flat.h.device)
    values = []
    for a in one_hots:
        feat = agent.wm.rssm.img_step(flat, a.expand(len(flat.h), -1)).feat()
        cont = agent.wm.continuation(feat)
        values.append(
            agent.wm.predicted_reward(feat) + gamma * cont * agent.slow_critic.value(feat)
        )
    return torch.stack(values, -1).reshape(*lead, -1)


class DreamerAgent(nn.Module):
    """World model, actor, critic, slow critic and the return normaliser, as one checkpointed
    module."""

    def __init__(self, d: DreamerConfig, obs_dim: int, action_dim: int, discrete: bool) -> None:
        super().__init__()
        self.wm = WorldModel(d, obs_dim, action_dim)
        self.actor = DreamerActor(d, self.wm.feat_dim, action_dim, discrete)
        self.critic = DreamerCritic(d, self.wm.feat_dim)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.return_norm = ReturnNorm(d.return_norm_decay)
        # dreamer.actor_ema > 0: a Polyak average of the actor acts in the envs
        self.averaged_actor: DreamerActor | None = (
            copy.deepcopy(self.actor).requires_grad_(False) if d.actor_ema > 0 else None
        )

    def acting_actor(self) -> DreamerActor:
        """The actor that acts in real envs: the averaged one where there is one."""
        return self.averaged_actor if self.averaged_actor is not None else self.actor


def behavior_losses(
    agent: DreamerAgent,
    start: Latent,
    start_cont: torch.Tensor,
    d: DreamerConfig,
    gamma: float,
    estimator: str,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """Actor and critic losses from imagined trajectories that start at ``start [N, ...]``
    (``start_cont [N]``: 1 − terminal of each start), their statistics, and the λ-returns of the
    starts ``[N]``. ``estimator``: the actor's gradient, ``reinforce``, ``dynamics`` or
    ``all_actions`` (see the module's docstring)."""
    wm, actor, critic = agent.wm, agent.actor, agent.critic
    dynamics = estimator == "dynamics"
    wm.requires_grad_(False)
    try:
        traj = imagine(wm, actor, start.detach(), d.horizon, dynamics)
        with torch.set_grad_enabled(dynamics):
            feat = traj.feat
            cont = wm.continuation(feat[1:])
            rewards = wm.predicted_reward(feat[1:])
            slow = agent.slow_critic.value(feat)
            returns = lambda_returns(rewards, gamma * cont, slow, d.lambda_)
    finally:
        wm.requires_grad_(True)
    weights = imagined_weights(cont, start_cont, gamma)
    scale = agent.return_norm.update(returns)
    logits = critic(feat[:-1].detach())
    if dynamics:
        objective = returns / scale
    elif estimator == "all_actions":
        q = action_values(agent, Latent(traj.latent.h[:-1], traj.latent.z[:-1]), gamma)
        probs = actor(feat[:-1].detach()).probs
        advantage = q - (probs.detach() * q).sum(-1, keepdim=True)
        objective = (probs * (advantage / scale)).sum(-1)
    else:
        baseline = critic.dist.mean(logits.detach())
        objective = traj.log_prob * ((returns - baseline).detach() / scale)
    entropy = traj.entropy
    actor_loss = -(weights * (objective + d.entropy * entropy)).mean()
    critic_nll = critic.dist.nll(logits, returns.detach())
    critic_nll = critic_nll + d.slow_critic_reg * critic.dist.nll(logits, slow[:-1].detach())
    critic_loss = (weights * critic_nll).mean()
    stats = {
        "actor_loss": actor_loss.detach(),
        "critic_loss": critic_loss.detach(),
        "entropy": entropy.detach().mean(),
        "imagined_return": returns.detach().mean(),
        "imagined_reward": rewards.detach().mean(),
        "imagined_cont": cont.detach().mean(),
        "return_scale": scale.detach(),
    }
    return actor_loss, critic_loss, stats, returns[0].detach()


def replay_critic_loss(
    agent: DreamerAgent,
    feat: torch.Tensor,
    batch: dict[str, torch.Tensor],
    pick: torch.Tensor,
    start_returns: torch.Tensor,
    d: DreamerConfig,
    gamma: float,
) -> torch.Tensor:
    """The critic's loss on the replayed batch's posterior states ``feat [B, T, F]``: two-hot NLL
    of λ-returns over the real rewards and terminations (DreamerV3's replay value loss). They
    bootstrap from the imagined λ-return of the states imagination started from (``pick`` into
    the flattened batch, ``start_returns``) and from the slow critic's value elsewhere."""
    feat = feat.detach()
    with torch.no_grad():
        boot = agent.slow_critic.value(feat).flatten()
        boot[pick] = start_returns
        targets, mask = replay_returns(
            batch["rewards"],
            batch["is_terminal"],
            batch["is_first"],
            boot.reshape(feat.shape[:2]),
            gamma,
            d.lambda_,
        )
    return (mask * agent.critic.dist.nll(agent.critic(feat), targets)).mean()


@torch.no_grad()
def polyak(target: nn.Module, online: nn.Module, tau: float) -> None:
    """target ← τ·online + (1 − τ)·target, parameter by parameter."""
    for slow, fast in zip(target.parameters(), online.parameters(), strict=True):
        slow.lerp_(fast, tau)


def update_slow_critic(agent: DreamerAgent, tau: float) -> None:
    polyak(agent.slow_critic, agent.critic, tau)
