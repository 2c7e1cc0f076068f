"""The planners on problems with known answers, and PETS' trajectory sampling."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

from mbrl_ai.modules.world_model import EnsembleWorldModel
from mbrl_ai.planners import CEM, ICEM, MPPI, CategoricalCEM, Exhaustive, RandomShooting
from mbrl_ai.planners.trajectories import _fixed_members, sequence_returns

CPU = torch.device("cpu")
TARGET = torch.tensor([[0.3], [-0.6], [0.8], [0.0]])  # [H=4, d=1]


def quadratic(candidates: torch.Tensor) -> torch.Tensor:
    """Highest (0) at TARGET; candidates [B, N, H, d] -> [B, N]."""
    return -((candidates - TARGET) ** 2).sum(dim=(2, 3))


PLANNERS = {
    "random": (RandomShooting(4, 1, 4000, CPU), 0.25),
    "cem": (CEM(4, 1, 300, 30, 8, 0.1, 0.5, CPU), 0.03),
    "icem": (ICEM(4, 1, 300, 30, 8, 0.1, 0.5, CPU), 0.03),
    "mppi": (MPPI(4, 1, 300, 8, 0.3, 0.05, CPU), 0.08),  # clamping at ±1 biases it slightly
}


@pytest.mark.parametrize("name", list(PLANNERS))
def test_each_continuous_planner_finds_the_optimum_of_a_quadratic(name: str) -> None:
    planner, tolerance = PLANNERS[name]
    plan = planner.plan(quadratic, 2, None, torch.Generator().manual_seed(0))
    assert plan.shape == (2, 4, 1)
    assert (plan - TARGET).abs().max() < tolerance, plan[0].flatten()


def test_cem_converges_its_mean_and_narrows_its_spread() -> None:
    generator = torch.Generator().manual_seed(1)
    spreads = []

    def evaluate(candidates: torch.Tensor) -> torch.Tensor:
        spreads.append(float(candidates.std(dim=1).mean()))
        return quadratic(candidates)

    plan = CEM(4, 1, 200, 20, 10, 0.0, 0.5, CPU).plan(evaluate, 1, None, generator)
    assert (plan - TARGET).abs().max() < 0.01
    assert spreads[-1] < 0.05 * spreads[0]


def test_a_warm_start_is_kept_by_random_shooting_when_nothing_beats_it() -> None:
    warm = TARGET.unsqueeze(0).clone()
    plan = RandomShooting(4, 1, 50, CPU).plan(quadratic, 1, warm, torch.Generator())
    assert torch.equal(plan, warm)


DISCRETE_TARGET = torch.tensor([2, 0, 1, 1, 0, 2])


def matches(candidates: torch.Tensor) -> torch.Tensor:
    """How many steps of each sequence [B, N, H] equal DISCRETE_TARGET."""
    return (candidates == DISCRETE_TARGET).sum(-1).float()


def test_categorical_cem_finds_a_known_sequence_and_never_rules_an_action_out() -> None:
    last: list[torch.Tensor] = []

    def evaluate(candidates: torch.Tensor) -> torch.Tensor:
        last[:] = [candidates]
        return matches(candidates)

    planner = CategoricalCEM(6, 3, 300, 30, 12, 0.1, 0.03, CPU)
    plan = planner.plan(evaluate, 2, None, torch.Generator().manual_seed(0))
    assert torch.equal(plan, DISCRETE_TARGET.expand(2, -1))
    # after 12 refits the distribution has converged, yet with the floor every action is still
    # sampled at every step
    for step in range(6):
        assert set(last[0][..., step].unique().tolist()) == {0, 1, 2}


def test_exhaustive_search_returns_the_exact_optimum_and_refuses_a_large_problem() -> None:
    plan = Exhaustive(6, 3, CPU).plan(matches, 1, None, torch.Generator())
    assert torch.equal(plan[0], DISCRETE_TARGET)
    with pytest.raises(ValueError, match="exceed"):
        Exhaustive(20, 3, CPU)


def _member_offset_model(ensemble: int = 5) -> EnsembleWorldModel:
    """Member e moves the 1-d state by exactly e per step (tiny noise), reward = the new state."""
    model = EnsembleWorldModel(
        1, gym.spaces.Box(-1.0, 1.0, (1,)), ensemble, [8], "tanh", -10.0, -9.0
    )
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.bias[:, 0, 0] = torch.arange(ensemble, dtype=torch.float32)  # Δs
        model.head.bias[:, 0, 2:4] = -10.0  # log-variances: the floor
        model.head.bias[:, 0, 4] = -20.0  # done logit: never
    return model


def test_ts_inf_keeps_each_particle_on_one_member() -> None:
    model = _member_offset_model()
    state = torch.zeros(20, 1)
    actions = torch.zeros(20, 1)
    generator = torch.Generator().manual_seed(0)
    for step in range(1, 4):
        state, _, _ = _fixed_members(model, state, actions, 5, generator)
        expected = step * (torch.arange(20) % 5).float()
        assert torch.allclose(state[:, 0], expected, atol=0.1)


def test_sequence_returns_average_particles_of_fixed_members() -> None:
    """Rewards of a particle on member e over 3 steps: e + 2e + 3e; the mean over 5 particles
    (one per member) is 6 · mean(0..4) = 12 for every candidate."""
    model = _member_offset_model()
    obs = torch.zeros(2, 1)
    candidates = torch.zeros(2, 3, 3, 1)
    generator = torch.Generator().manual_seed(0)

    def reward_is_next_state(s: torch.Tensor, a: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        return s2[:, 0]

    returns = sequence_returns(
        model, obs, candidates, 5, "ts_inf", 1.0, generator, reward_is_next_state
    )
    assert returns.shape == (2, 3)
    assert torch.allclose(returns, torch.full((2, 3), 12.0), atol=0.2)
    expectation = sequence_returns(
        model, obs, candidates, 1, "expectation", 1.0, generator, reward_is_next_state
    )
    assert torch.allclose(expectation, torch.full((2, 3), 12.0), atol=1e-4)


def test_terminal_value_adds_the_discounted_value_of_the_last_state() -> None:
    """The same particles as above end on state 3e after 3 steps; with V(s) = 10 s and gamma 0.5
    every particle adds 0.5^3 · 30e, so the candidates' mean return grows by 3.75 · mean(0..4)."""
    model = _member_offset_model()
    obs, candidates = torch.zeros(2, 1), torch.zeros(2, 3, 3, 1)

    def reward_is_next_state(s: torch.Tensor, a: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        return s2[:, 0]

    def returns(value: object) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        return sequence_returns(model, obs, candidates, 5, "ts_inf", 0.5, generator,
                                reward_is_next_state, terminal_value=value)  # type: ignore[arg-type]  # fmt: skip

    added = returns(lambda s: 10.0 * s[:, 0]) - returns(None)
    assert torch.allclose(added, torch.full((2, 3), 0.125 * 30.0 * 2.0), atol=0.1)


def test_a_next_state_done_classifier_ends_particles_on_the_state_they_reach() -> None:
    """world_model.done_input=next_state: each particle ends after the step whose predicted next
    state the classifier calls terminal (here s' > 1.5). Member e reaches e, 2e, 3e; rewards are
    the new state: member 0 earns 0, member 1 earns 1 + 2 (ends at 2), members 2–4 earn e (end at
    once), so the mean over one particle per member is (0 + 3 + 2 + 3 + 4) / 5 = 2.4. The mean
    model moves 2 per step and ends after the first: 2."""
    offsets = _member_offset_model()
    model = EnsembleWorldModel(
        1, gym.spaces.Box(-1.0, 1.0, (1,)), 5, [8], "tanh", -10.0, -9.0, done_on_next_state=True
    )
    model.load_state_dict(offsets.state_dict(), strict=False)
    assert model.done_net is not None
    with torch.no_grad():
        for layer in (model.done_net[0], model.done_net[2]):
            layer.weight.zero_()
            layer.bias.zero_()
        model.done_net[0].weight[:, 0, 0] = 1.0  # unit 0 = tanh(s')
        model.done_net[2].weight[:, 0, 0] = 100.0
        model.done_net[2].bias.fill_(-100.0 * float(torch.tanh(torch.tensor(1.5))))

    def reward_is_next_state(s: torch.Tensor, a: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        return s2[:, 0]

    obs, candidates = torch.zeros(2, 1), torch.zeros(2, 3, 3, 1)
    for propagation, particles, expected in (("ts_inf", 5, 2.4), ("expectation", 1, 2.0)):
        returns = sequence_returns(model, obs, candidates, particles, propagation, 1.0,
                                   torch.Generator().manual_seed(0), reward_is_next_state)  # fmt: skip
        assert torch.allclose(returns, torch.full((2, 3), expected), atol=0.05), propagation
