"""The one model-rollout engine: its done rule, its disagreement stop and its masks, and that
MB-PPO's imagination and MBPO's branched rollouts both follow them."""

from __future__ import annotations

import torch

from mbrl_ai.algos.mbpo.branched_rollouts import branched_rollouts
from mbrl_ai.config import ImaginationConfig
from mbrl_ai.imagine import imagine_rollouts
from mbrl_ai.rollouts import model_rollouts


class _Scripted:
    """s' = s + 1 and r = s; done probability 0.9 once s' reaches ``done_at``; the members'
    disagreement is s' / 10 (so it grows along the rollout). Row 0 starts at 0, row 1 at 2."""

    ensemble_size = 3

    def __init__(self, done_at: float = 100.0) -> None:
        self.done_at = done_at
        self.members_seen: list[torch.Tensor] = []

    def _out(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        nxt = obs + 1.0
        done_p = torch.where(nxt[:, 0] >= self.done_at, 0.9, 0.1)
        return nxt, obs[:, 0].clone(), done_p, nxt[:, 0] / 10.0

    def step(self, obs, actions, sample=True, disagreement=False, generator=None):  # noqa: ANN001, ANN201
        nxt, r, p, d = self._out(obs)
        return nxt, r, p, d if disagreement else None

    def predict(self, obs, actions, members, sample=True):  # noqa: ANN001, ANN201
        self.members_seen.append(members.clone())
        return self._out(obs)


class _Policy:
    discrete = False
    action_dim = 1

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(len(obs), 1), torch.zeros(len(obs))


STARTS = torch.tensor([[0.0], [2.0]])


def test_the_learned_done_head_ends_a_rollout_at_its_threshold() -> None:
    out = model_rollouts(_Scripted(done_at=3.0), _Policy().sample, STARTS, 5, done_threshold=0.5)
    # row 1 is done at once (s' = 3); row 0 at its third step (s' = 3)
    assert out.valid.T.tolist() == [[True, True, True], [True, False, False]]
    assert out.terminated.T.tolist() == [[False, False, True], [True, False, False]]
    assert not out.cut.any()  # ended by done: no bootstrap anywhere
    high = model_rollouts(_Scripted(done_at=3.0), _Policy().sample, STARTS, 5, done_threshold=0.95)
    assert high.valid.all() and high.cut[-1].all()  # 0.9 < 0.95: never done, cut by the horizon


def test_a_known_termination_rule_replaces_the_head() -> None:
    out = model_rollouts(_Scripted(done_at=3.0), _Policy().sample, STARTS, 4,
                         done_fn=lambda s: s[:, 0] >= 4.0)  # fmt: skip
    assert out.lengths.tolist() == [4, 2]


def test_the_disagreement_stop_drops_the_crossing_transition_and_cuts_before_it() -> None:
    # disagreement of a step = s'/10: row 0 crosses 0.35 at its 4th step (s' = 4), row 1 at its 2nd
    out = model_rollouts(_Scripted(), _Policy().sample, STARTS, 6, disagreement_stop=0.35)
    assert out.lengths.tolist() == [3, 1]
    assert out.cut.T.tolist() == [
        [False, False, True, False],
        [True, False, False, False],
    ]
    assert out.entered[:, 1].tolist() == [True, True, False, False]


def test_imagination_and_branched_rollouts_follow_the_same_rules() -> None:
    model = _Scripted(done_at=5.0)

    class Critic(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, 0]

    class Actor(_Policy):
        pass

    im = imagine_rollouts(Actor(), Critic(), model, STARTS, 6,  # type: ignore[arg-type]
                          ImaginationConfig(mode="fixed", disagreement_stop=0.35))  # fmt: skip
    mb, stats = branched_rollouts(model, Actor(), STARTS, 6, [0, 2],  # type: ignore[arg-type]
                                  disagreement_stop=0.35)  # fmt: skip
    assert im.valid.sum(0).tolist() == [3, 1]
    assert im.truncated.T[:, :3].tolist() == [
        [False, False, True],
        [True, False, False],
    ]
    assert stats["rollout_length_mean"] == 2.0
    # step-major: step 0 of both rows, then steps 1 and 2 of row 0
    assert mb.obs[:, 0].tolist() == [0.0, 2.0, 1.0, 2.0]
    assert all(set(m.tolist()) <= {0, 2} for m in model.members_seen)  # elites only
