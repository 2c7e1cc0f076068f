"""Every tracked module, normaliser and buffer of every algorithm sits on the configured device
after a short run: on CUDA where a GPU is present, on the CPU otherwise (where the check still
covers the code path that places them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from mbrl_ai.core.optim import Adam
from mbrl_ai.runtime import Checkpointer
from mbrl_ai.train import run
from tests.conftest import TINY, compose

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
RUNS = {
    "ppo": ["algo=ppo", "ppo.normalize_obs=true", "ppo.normalize_reward=true"],
    "mbppo_rnd": ["algo=mbppo", "curiosity=rnd", "curiosity.warmup_steps=0"],
    "mbppo_icm_head": ["algo=mbppo", "curiosity=icm", "curiosity.intrinsic_head=true"],
    "mbppo_disagreement": ["algo=mbppo", "curiosity=disagreement"],
    "mbppo_obs_norm": ["algo=mbppo", "ppo.normalize_obs=true", "ppo.normalize_reward=true"],
    "sac": ["algo=sac", "env=Pendulum-v1", "sac.learning_starts=64", "sac.steps_per_iteration=64"],
    "mbpo": [
        "algo=mbpo",
        "env=Pendulum-v1",
        "sac.learning_starts=64",
        "sac.steps_per_iteration=64",
        "mbpo.max_epochs=2",
        "mbpo.rollout_batch_size=16",
    ],  # fmt: skip
}
# the reward scaler only sees the env's rewards, as numpy on the CPU (agent.build_ppo_agent)
ON_CPU_BY_DESIGN = {"reward_rms"}


def _tensors(obj: Any) -> list[tuple[str, torch.Tensor]]:
    if isinstance(obj, torch.nn.Module):
        return [*obj.named_parameters(), *obj.named_buffers()]
    if isinstance(obj, (torch.optim.Optimizer, Adam)):
        return [
            (f"state.{k}", v)
            for state in obj.state.values()
            for k, v in state.items()
            if isinstance(v, torch.Tensor) and v.dim() > 0
        ]
    return []


@pytest.mark.integration
@pytest.mark.parametrize("name", list(RUNS))
def test_every_tracked_tensor_is_on_the_configured_device(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}
    checkpoint = Checkpointer.checkpoint

    def keep_tracked(self: Checkpointer, **loop: Any) -> Path:
        seen.update(self.tracked)
        return checkpoint(self, **loop)

    monkeypatch.setattr(Checkpointer, "checkpoint", keep_tracked)
    run(compose(*TINY, *RUNS[name], f"device={DEVICE}", "world_model.train_steps=5"), tmp_path)
    assert seen, "nothing was checkpointed"
    want = torch.device(DEVICE).type
    misplaced = [
        f"{obj_name}.{tensor_name} on {tensor.device}"
        for obj_name, obj in seen.items()
        if obj_name not in ON_CPU_BY_DESIGN
        for tensor_name, tensor in _tensors(obj)
        if tensor.device.type != want
    ]
    assert not misplaced, misplaced
