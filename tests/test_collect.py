"""2.1: collected transitions are real ones, with terminated and truncated kept apart."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mbrl_ai.agent import build_actor_critic
from mbrl_ai.collect import collect_rollout, start_collection
from mbrl_ai.envs import inspect_env, make_vec_env
from tests.conftest import compose


def _collect(env_id: str, n_envs: int = 3, n_steps: int = 40):  # noqa: ANN202
    cfg = compose(f"env=tests.fake_envs:{env_id}", f"n_envs={n_envs}", "n_real_steps=120")
    info = inspect_env(cfg.env)
    actor, critic = build_actor_critic(cfg, info)
    envs = make_vec_env(cfg.env, n_envs, seed=0)
    state = start_collection(envs, seed=0)
    rollout, state = collect_rollout(envs, actor, critic, state, n_steps, cfg.gamma)
    envs.close()
    return rollout, state, critic


@pytest.mark.parametrize("env_id", ["Counter-v0", "CounterTerm-v0"])
def test_no_stored_transition_crosses_a_reset(env_id: str) -> None:
    rollout, _, _ = _collect(env_id)
    obs, nxt = rollout.raw_obs, rollout.raw_next_obs
    # every stored (s, s') is a true step: one more step taken, same episode
    np.testing.assert_array_equal(nxt[..., 0], obs[..., 0] + 1)
    np.testing.assert_array_equal(nxt[..., 1], obs[..., 1])
    # and the step after an episode end starts the next episode from its first state
    ended = (rollout.terminated | rollout.truncated).numpy()[:-1]
    np.testing.assert_array_equal(obs[1:][ended][:, 0], 0)
    np.testing.assert_array_equal(obs[1:][ended][:, 1], obs[:-1][ended][:, 1] + 1)


def test_truncation_and_termination_are_kept_apart() -> None:
    trunc_rollout, _, critic = _collect("Counter-v0")  # time limit 5 < termination at 7
    assert trunc_rollout.truncated.any() and not trunc_rollout.terminated.any()
    term_rollout, _, _ = _collect("CounterTerm-v0")  # terminates at 4 < time limit 50
    assert term_rollout.terminated.any() and not term_rollout.truncated.any()

    # truncated steps bootstrap from V(final_obs); terminated steps from nothing
    t, n = torch.nonzero(trunc_rollout.truncated)[0].tolist()
    final = torch.from_numpy(trunc_rollout.raw_next_obs[t, n][None])
    with torch.no_grad():
        expected = critic(final).item()
    assert trunc_rollout.next_values[t, n].item() == pytest.approx(expected, rel=1e-5)
    assert (term_rollout.next_values[term_rollout.terminated] == 0).all()
    # within an episode the bootstrap is the next stored state's value
    cont = ~(trunc_rollout.terminated | trunc_rollout.truncated)[:-1]
    torch.testing.assert_close(trunc_rollout.next_values[:-1][cont], trunc_rollout.values[1:][cont])


def test_finished_episodes_are_reported_with_their_returns() -> None:
    rollout, state, _ = _collect("CounterTerm-v0", n_envs=2, n_steps=12)
    assert state.finished_lengths == [4] * 6
    assert state.finished_returns == [4.0] * 6
    assert rollout.ext_rewards.sum().item() == 24.0
