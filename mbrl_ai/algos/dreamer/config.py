"""The ``DreamerConfig`` node of its algorithm: its keys, their declared ranges and its cross-key rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

from mbrl_ai.config import Config, need
from mbrl_ai.core.ranges import (
    Ge,
    Gt,
    In,
    OneOf,
    need_learning_starts,
    need_multiple_of_envs,
)

# the values of the field below that the algorithm dispatches on
ACTOR_GRADS = ("auto", "reinforce", "dynamics", "all_actions")


@dataclass
class DreamerConfig:
    """A small Dreamer-style agent (``algo=dreamer``): a recurrent state-space world model (GRU
    state + categorical latents) learned from sequences of real experience, and an actor and a
    critic trained only on trajectories imagined in its latent space (λ-returns, percentile return
    normalisation, a slow critic). Discrete and Box actions. Registered by ``algos/dreamer/``."""

    key: ClassVar[str] = "dreamer"

    deter: Annotated[int, Ge(1)] = 128
    """Width of the RSSM's deterministic (GRU) state."""
    latents: Annotated[int, Ge(1)] = 8
    """Categorical latent variables of the stochastic state ..."""
    classes: Annotated[int, Ge(1)] = 8
    """... each with this many classes (the stochastic state is latents × classes one-hots)."""
    hidden: Annotated[int, Ge(1)] = 128
    """Width of every hidden layer (encoder, RSSM, decoder, heads, actor, critic)."""
    model_layers: Annotated[int, Ge(0)] = 1
    """Hidden layers of the encoder, the decoder and the reward and continuation heads."""
    layers: Annotated[int, Ge(0)] = 2
    """Hidden layers of the actor and the critic."""
    unimix: Annotated[float, In(0.0, 1.0, "[)")] = 0.01
    """Share of the uniform distribution mixed into every latent and discrete-action distribution
    (keeps log-probabilities and KL finite)."""
    free_bits: Annotated[float, Ge(0.0)] = 1.0
    """KL terms below this many nats are not minimised (per sequence step, summed over latents)."""
    kl_dynamics: Annotated[float, Ge(0.0)] = 0.5
    """Weight of KL(sg(posterior) ‖ prior): trains the prior toward the posterior."""
    kl_representation: Annotated[float, Ge(0.0)] = 0.1
    """Weight of KL(posterior ‖ sg(prior)): keeps the posterior predictable."""
    batch_size: Annotated[int, Ge(1)] = 16
    """Sequences per world-model update."""
    seq_len: Annotated[int, Ge(2)] = 32
    """Steps per replayed sequence."""
    horizon: Annotated[int, Ge(1)] = 15
    """Steps of every imagined trajectory."""
    imagine_starts: Annotated[int, Ge(0)] = 256
    """Imagined trajectories per update, each from a posterior state of the replayed batch drawn
    without replacement (0: one from every posterior state, batch_size × seq_len of them)."""
    lambda_: Annotated[float, In(0.0, 1.0)] = 0.95
    """λ of the imagined λ-returns (the discount is the root ``gamma``)."""
    train_ratio: Annotated[float, Gt(0.0)] = 0.25
    """Gradient steps (world model, actor and critic) per real step, once learning starts."""
    learning_starts: Annotated[int, Ge(0)] = 1000
    """Uniformly random actions, and no updates, for this many real steps."""
    steps_per_iteration: Annotated[int, Ge(1)] = 500
    """Real steps per iteration (evaluation, logging and checkpoints happen between them)."""
    buffer_size: int = 1_000_000
    """Real steps kept in the sequence replay (over all training envs)."""
    model_lr: Annotated[float, Gt(0.0)] = 6e-4
    """Adam learning rate of the world model."""
    actor_lr: Annotated[float, Gt(0.0)] = 1e-4
    """Adam learning rate of the actor."""
    critic_lr: Annotated[float, Gt(0.0)] = 1e-4
    """Adam learning rate of the critic."""
    model_grad_clip: Annotated[float, Gt(0.0)] = 1000.0
    """Global gradient-norm clip of the world-model update."""
    ac_grad_clip: Annotated[float, Gt(0.0)] = 100.0
    """Global gradient-norm clip of the actor's and the critic's updates."""
    entropy: Annotated[float, Ge(0.0)] = 3e-4
    """Actor entropy bonus η (on normalised returns)."""
    explore: Annotated[str, OneOf(("sample", "mode"))] = "sample"
    """How the training envs act once learning starts: ``sample`` the actor (DreamerV2/V3) or take
    its ``mode``; either way a uniformly random action replaces it with probability
    ``explore_epsilon``."""
    explore_epsilon: Annotated[float, In(0.0, 1.0)] = 0.0
    """Probability of a uniformly random action in a training env's step (DreamerV1's
    ε-greedy exploration, on top of ``explore``)."""
    actor_grad: Annotated[str, OneOf(ACTOR_GRADS)] = "auto"
    """Actor gradient: ``reinforce`` (score function, with the critic as baseline), ``dynamics``
    (backpropagation through the world model), ``all_actions`` (Discrete actions only: every
    action of every imagined state is scored by one more imagined step, r + γ·c·v_slow of the
    state it reaches, and the actor's probabilities are moved toward the better ones; no action
    is sampled for the gradient) or ``auto`` (reinforce for Discrete, dynamics for Box actions,
    as DreamerV3 does)."""
    return_norm_decay: Annotated[float, In(0.0, 1.0)] = 0.99
    """EMA decay of the 5th–95th percentile range S that returns are divided by (by max(1, S))."""
    slow_critic_tau: Annotated[float, In(0.0, 1.0, "(]")] = 0.02
    """Slow critic ← τ·critic + (1 − τ)·slow critic after every update; it gives the λ-return's
    bootstrap values and regularises the critic."""
    slow_critic_reg: Annotated[float, Ge(0.0)] = 1.0
    """Weight of the critic's loss toward the slow critic's values."""
    actor_ema: Annotated[float, In(0.0, 1.0)] = 0.0
    """τ of a Polyak average of the actor's weights (averaged ← τ·actor + (1 − τ)·averaged after
    every update) that acts in the training envs and is evaluated; the actor itself keeps learning
    in imagination. 0: the actor acts itself."""
    act_context: Annotated[int, Ge(0)] = 0
    """Steps of real observations the acting (and, unless ``eval_context`` says otherwise, the
    evaluated) policy filters its latent state over: K > 0 re-filters each env's last K steps from
    a blank state at every step, so the actor sees states like those of the replayed
    ``seq_len``-step sequences it learned from; 0 filters the whole episode."""
    eval_context: Annotated[int | None, Ge(0)] = None
    """The same for the evaluated policy only (the run's evaluations and ``mbrl_ai.evaluate``):
    the training envs and so the training itself are untouched by it. ``null``: ``act_context``."""
    replay_critic: Annotated[float, Ge(0.0)] = 0.0
    """Weight of the critic's loss on the replayed posterior states, toward λ-returns of the real
    rewards and terminations (DreamerV3's replay value loss, 0.3 there; 0: off)."""
    bins: Annotated[int, Ge(2)] = 255
    """Bins of the critic's two-hot distribution over symlog values in [-20, 20]."""

    @property
    def evaluated_context(self) -> int:
        """The evaluated policy's context: ``eval_context``, else ``act_context``."""
        return self.act_context if self.eval_context is None else self.eval_context

    def check(self, c: Config) -> None:
        least = self.seq_len * c.n_envs  # one whole sequence from every env
        need(self.buffer_size >= least, "dreamer.buffer_size", self.buffer_size,
             f"must be an integer >= {least}")  # fmt: skip
        need_multiple_of_envs("dreamer.steps_per_iteration", self.steps_per_iteration, c.n_envs)
        need_learning_starts("dreamer.learning_starts", self.learning_starts, c)
