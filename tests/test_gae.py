"""2.4: GAE against a hand-computed case and a naive reference, and segment handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mbrl_ai.gae import compute_gae


def _t(x, dtype=torch.float32):  # noqa: ANN001, ANN202
    return torch.tensor(x, dtype=dtype).reshape(-1, 1)


def test_hand_computed_three_steps_terminating() -> None:
    # r = 1, 2, 3; V = 0.5, 1.0, 1.5; the episode terminates at the last step
    g, lam = 0.9, 0.8
    adv, ret = compute_gae(
        _t([1, 2, 3]),
        _t([0.5, 1.0, 1.5]),
        _t([1.0, 1.5, 99.0]),
        _t([0, 0, 1], torch.bool),
        _t([0, 0, 0], torch.bool),
        g,
        lam,
    )
    d2 = 3 - 1.5  # terminal: no bootstrap, so next_values (99) is ignored
    d1 = 2 + g * 1.5 - 1.0
    d0 = 1 + g * 1.0 - 0.5
    a2 = d2
    a1 = d1 + g * lam * a2
    a0 = d0 + g * lam * a1
    np.testing.assert_allclose(adv.squeeze(1).numpy(), [a0, a1, a2], rtol=1e-6)
    np.testing.assert_allclose(ret.squeeze(1).numpy(), [a0 + 0.5, a1 + 1.0, a2 + 1.5], rtol=1e-6)


def test_truncation_bootstraps_and_termination_does_not() -> None:
    r, v, v_next = _t([1.0]), _t([2.0]), _t([10.0])
    no = _t([0], torch.bool)
    yes = _t([1], torch.bool)
    adv_trunc, _ = compute_gae(r, v, v_next, no, yes, 0.99, 0.95)
    adv_term, _ = compute_gae(r, v, v_next, yes, no, 0.99, 0.95)
    assert adv_trunc.item() == pytest.approx(1.0 + 0.99 * 10.0 - 2.0)
    assert adv_term.item() == pytest.approx(1.0 - 2.0)


def test_nothing_flows_across_a_segment_end() -> None:
    # two segments in one column; a huge reward after the cut must not change the first segment
    rewards = _t([1.0, 1.0, 1000.0, 1.0])
    values = _t([0.0, 0.0, 0.0, 0.0])
    next_values = _t([0.0, 5.0, 0.0, 0.0])
    trunc = _t([0, 1, 0, 0], torch.bool)
    term = _t([0, 0, 0, 1], torch.bool)
    adv, _ = compute_gae(rewards, values, next_values, term, trunc, 0.9, 0.9)
    assert adv[1].item() == pytest.approx(1.0 + 0.9 * 5.0)
    assert adv[0].item() == pytest.approx(1.0 + 0.9 * 0.0 + 0.81 * adv[1].item())


def _naive_gae(r, v, v_next, term, trunc, gamma, lam):  # noqa: ANN001, ANN202
    """Textbook per-environment loop: δ and the λ-return sum written out step by step."""
    T, N = r.shape
    adv = np.zeros((T, N))
    for n in range(N):
        for t in range(T):
            total, discount = 0.0, 1.0
            for k in range(t, T):
                bootstrap = 0.0 if term[k, n] else v_next[k, n]
                delta = r[k, n] + gamma * bootstrap - v[k, n]
                total += discount * delta
                if term[k, n] or trunc[k, n]:
                    break
                discount *= gamma * lam
            adv[t, n] = total
    return adv


def test_matches_naive_reference_on_random_segments() -> None:
    rng = np.random.default_rng(0)
    T, N = 40, 3
    r = rng.normal(size=(T, N))
    v = rng.normal(size=(T, N))
    v_next = rng.normal(size=(T, N))
    term = rng.random((T, N)) < 0.1
    trunc = (rng.random((T, N)) < 0.1) & ~term
    expected = _naive_gae(r, v, v_next, term, trunc, 0.97, 0.9)
    adv, ret = compute_gae(
        torch.tensor(r),
        torch.tensor(v),
        torch.tensor(v_next),
        torch.tensor(term),
        torch.tensor(trunc),
        0.97,
        0.9,
    )
    np.testing.assert_allclose(adv.numpy(), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ret.numpy(), expected + v, rtol=1e-10, atol=1e-10)
