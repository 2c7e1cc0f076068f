"""mbrl_ai.core.optim repeats torch.optim's Adam/AdamW and clip_grad_norm_ bit for bit, reads and
writes their state dicts, and never imports torch._dynamo."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from mbrl_ai.core.optim import Adam, clip_grad_norm


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))


def _grads(net: nn.Module, step: int, clip: float | None, clip_fn) -> None:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(step)
    x = torch.randn(32, 5, generator=g) * (1 + step % 3)
    loss = (net(x) ** 2).mean() * (10.0 if step % 4 == 0 else 1.0)  # some steps get clipped
    loss.backward()
    if clip is not None:
        clip_fn(net.parameters(), clip)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("decoupled, weight_decay", [(False, 0.0), (False, 1e-3), (True, 1e-2)])
def test_adam_is_torch_bit_for_bit(fused: bool, decoupled: bool, weight_decay: float) -> None:
    ours_net, ref_net = _net(0), _net(0)
    torch_cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    kw = {"lr": 3e-3, "betas": (0.8, 0.99), "eps": 1e-5, "weight_decay": weight_decay}
    ours = Adam(ours_net.parameters(), **kw, decoupled=decoupled, fused=fused)  # type: ignore[arg-type]
    ref = torch_cls(ref_net.parameters(), **kw, fused=fused)  # type: ignore[arg-type]
    for step in range(25):
        if step == 10:  # a learning-rate schedule writes into the group
            ours.param_groups[0]["lr"] = ref.param_groups[0]["lr"] = 1e-3
        for opt, net, clip_fn in (
            (ours, ours_net, clip_grad_norm),
            (ref, ref_net, nn.utils.clip_grad_norm_),
        ):
            opt.zero_grad(set_to_none=True)
            _grads(net, step, 0.5, clip_fn)
            opt.step()
        for a, b in zip(ours_net.parameters(), ref_net.parameters(), strict=True):
            assert torch.equal(a, b), f"parameters differ after step {step}"
    ours_sd, ref_sd = ours.state_dict(), ref.state_dict()
    assert ours_sd["param_groups"] == ref_sd["param_groups"]
    assert ours_sd["state"].keys() == ref_sd["state"].keys()
    for i, s in ref_sd["state"].items():
        for k, v in s.items():
            assert torch.equal(ours_sd["state"][i][k], v), (i, k)
            assert ours_sd["state"][i][k].device == v.device


def test_state_dicts_cross_load() -> None:
    """A torch Adam's checkpoint resumes in ours and the other way round, with identical steps."""
    nets = [_net(1) for _ in range(4)]
    a = torch.optim.Adam(nets[0].parameters(), lr=1e-2, fused=True)
    b = Adam(nets[1].parameters(), lr=1e-2, fused=True)
    for step in range(5):
        for opt, net in ((a, nets[0]), (b, nets[1])):
            opt.zero_grad()
            _grads(net, step, None, None)
            opt.step()
    nets[2].load_state_dict(nets[0].state_dict())
    nets[3].load_state_dict(nets[1].state_dict())
    ours_from_torch = Adam(nets[2].parameters(), lr=0.5, fused=True)
    ours_from_torch.load_state_dict(a.state_dict())
    torch_from_ours = torch.optim.Adam(nets[3].parameters(), lr=0.5, fused=True)
    torch_from_ours.load_state_dict(b.state_dict())
    assert ours_from_torch.param_groups[0]["lr"] == 1e-2
    for step in range(5, 10):
        for opt, net in (
            (a, nets[0]),
            (ours_from_torch, nets[2]),
            (torch_from_ours, nets[3]),
        ):
            opt.zero_grad()
            _grads(net, step, None, None)
            opt.step()
    for p0, p2, p3 in zip(*(n.parameters() for n in (nets[0], nets[2], nets[3])), strict=True):
        assert torch.equal(p0, p2) and torch.equal(p0, p3)


def test_a_second_group_matches_torch_and_its_layout() -> None:
    """MB-PPO's intrinsic value head joins PPO's optimiser as a second group."""
    nets = [(_net(2), _net(3)) for _ in range(2)]
    ours = Adam(nets[0][0].parameters(), lr=1e-2, eps=1e-5, fused=True)
    ours.add_param_group({"params": list(nets[0][1].parameters())})
    ref = torch.optim.Adam(nets[1][0].parameters(), lr=1e-2, eps=1e-5, fused=True)
    ref.add_param_group({"params": list(nets[1][1].parameters())})
    for step in range(6):
        for opt, (a, b) in ((ours, nets[0]), (ref, nets[1])):
            for group in opt.param_groups:
                group["lr"] = 1e-2 * (1 - step / 10)
            opt.zero_grad()
            _grads(a, step, None, None)
            _grads(b, step + 1, None, None)
            opt.step()
    for p, q in zip(
        [*nets[0][0].parameters(), *nets[0][1].parameters()],
        [*nets[1][0].parameters(), *nets[1][1].parameters()],
        strict=True,
    ):
        assert torch.equal(p, q)
    assert ours.state_dict()["param_groups"] == ref.state_dict()["param_groups"]
    fresh = Adam(_net(2).parameters(), fused=True)
    fresh.add_param_group({"params": list(_net(3).parameters())})
    fresh.load_state_dict(ref.state_dict())
    assert fresh.param_groups[1]["lr"] == ref.param_groups[1]["lr"]


def test_mismatched_state_is_refused() -> None:
    opt = Adam(_net(0).parameters())
    other = Adam(nn.Linear(2, 2).parameters())
    with pytest.raises(ValueError, match="does not match"):
        opt.load_state_dict(other.state_dict())


def test_clip_grad_norm_returns_the_norm_before_scaling() -> None:
    w = nn.Parameter(torch.zeros(2))
    w.grad = torch.tensor([3.0, 4.0])
    assert clip_grad_norm([w], 1.0).item() == pytest.approx(5.0)
    assert torch.linalg.vector_norm(w.grad).item() == pytest.approx(1.0, rel=1e-5)


@pytest.mark.integration
@pytest.mark.parametrize("algo", ["ppo", "mbppo", "sac"])
def test_a_run_never_imports_dynamo(algo: str) -> None:
    """Importing torch._dynamo costs ~0.9 s: a short run must not pay it for nothing."""
    env = "Pendulum-v1" if algo == "sac" else "CartPole-v1"
    code = (
        "import sys, tempfile, pathlib\n"
        "from mbrl_ai.train import compose_config, run\n"
        f"cfg = compose_config(['algo={algo}', 'env={env}', 'total_timesteps=256', "
        "'eval_episodes=1', 'logger.progress=off', 'logger.mode=disabled', 'n_envs=1', "
        "'n_real_steps=128', 'sac.learning_starts=64'])\n"
        "with tempfile.TemporaryDirectory() as d:\n"
        "    run(cfg, pathlib.Path(d))\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "False"
