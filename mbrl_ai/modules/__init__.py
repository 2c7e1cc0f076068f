"""Networks only: each class has ``forward`` and the few methods its callers need; no training code."""

# the curiosity modules register their names on import (curiosity.CURIOSITY)
from mbrl_ai.modules import curiosity, disagreement, icm, rnd  # noqa: F401
from mbrl_ai.modules.actor import Actor
from mbrl_ai.modules.critic import Critic
from mbrl_ai.modules.normalizer import RunningMeanStd

__all__ = ["Actor", "Critic", "RunningMeanStd"]
