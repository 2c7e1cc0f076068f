"""Adam and AdamW with exactly ``torch.optim``'s arithmetic and a fraction of its per-call cost.

``torch.optim.Optimizer`` wraps construction, ``step`` and ``zero_grad`` in hooks, profiler
records and dynamo guards; in torch 2.13 the first of those calls also imports ``torch._dynamo``
(about 0.9 s). Our updates are a few small networks stepped thousands of times, so that overhead
was a measurable share of a run. :class:`Adam` keeps the update and drops the wrapping:

- ``fused=True`` calls the same fused kernel ``torch.optim.Adam(fused=True)`` calls;
- ``fused=False`` repeats torch's default CPU update (the per-tensor loop of
  ``torch.optim.adam._single_tensor_adam``) operation for operation.

Either way the parameters and state after each step are bit-identical to torch's
(``tests/test_optim.py``), and ``state_dict()`` has ``torch.optim.Adam``'s layout, so checkpoints
written by either load into the other. Only what the codebase uses is supported: no amsgrad, no
maximize, no closures.

:func:`clip_grad_norm` is ``torch.nn.utils.clip_grad_norm_`` for gradients on one device and
dtype, with the same operations in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import torch


class Optimizer(Protocol):
    """What the update functions need of an optimiser: :class:`Adam`, or any ``torch.optim`` one."""

    param_groups: list[dict[str, Any]]
    state: Any  # per-parameter moments; cleared to start an optimiser over

    def zero_grad(self, set_to_none: bool = ...) -> None: ...

    def step(self) -> Any: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


class Adam:
    """Adam (``decoupled=False``) or AdamW (``decoupled=True``)."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        decoupled: bool = False,
        fused: bool = False,
    ) -> None:
        self.fused = fused
        # the keys and order of torch.optim.Adam's groups, so that state dicts match key for key
        self.defaults: dict[str, Any] = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": False,
            "maximize": False,
            "foreach": None,
            "capturable": False,
            "differentiable": False,
            "fused": fused,
            "decoupled_weight_decay": decoupled,
        }
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}
        self.add_param_group({"params": params})

    def add_param_group(self, group: Mapping[str, Any]) -> None:
        """Another group of parameters; settings it does not give are the constructor's."""
        params = list(group["params"])
        if not params:
            raise ValueError("Adam got an empty parameter list")
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(f"Adam does not support the group settings {sorted(unknown)}")
        self.param_groups.append({**self.defaults, **group, "params": params})

    def _all_params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self._all_params():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def _state(self, p: torch.Tensor) -> dict[str, torch.Tensor]:
        state = self.state.get(p)
        if state is None:
            # the step counter lives where torch keeps it: on the parameter's device when fused,
            # on the CPU otherwise
            step = torch.zeros((), dtype=torch.float32, device=p.device if self.fused else "cpu")
            state = {
                "step": step,
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
            }
            self.state[p] = state
        return state

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                states = [self._state(p) for p in params]
                if self.fused:
                    self._fused_step(params, states, group)
                else:
                    self._loop_step(params, states, group)

    @staticmethod
    def _loop_step(
        params: list[torch.Tensor], states: list[dict[str, torch.Tensor]], group: dict[str, Any]
    ) -> None:
        """torch's default CPU update, one tensor at a time."""
        lr, (beta1, beta2), eps, wd = (
            group["lr"],
            group["betas"],
            group["eps"],
            group["weight_decay"],
        )
        for p, state in zip(params, states, strict=True):
            grad = p.grad
            assert grad is not None
            step_t = state["step"]
            step_t += 1
            if wd != 0:
                if group["decoupled_weight_decay"]:
                    p.mul_(1 - lr * wd)
                else:
                    grad = grad.add(p, alpha=wd)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step = step_t.item()
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            step_size = lr / bias_correction1
            denom = (exp_avg_sq.sqrt() / bias_correction2**0.5).add_(eps)
            p.addcdiv_(exp_avg, denom, value=-step_size)

    @staticmethod
    def _fused_step(
        params: list[torch.Tensor], states: list[dict[str, torch.Tensor]], group: dict[str, Any]
    ) -> None:
        """One fused kernel call per (device, dtype), as torch groups them."""
        by_device: dict[tuple[torch.device, torch.dtype], list[int]] = {}
        for i, p in enumerate(params):
            by_device.setdefault((p.device, p.dtype), []).append(i)
        kernel = torch._fused_adamw_ if group["decoupled_weight_decay"] else torch._fused_adam_
        beta1, beta2 = group["betas"]
        for idx in by_device.values():
            steps = [states[i]["step"] for i in idx]
            torch._foreach_add_(steps, 1)
            kernel(
                [params[i] for i in idx],
                [params[i].grad for i in idx],  # type: ignore[misc]
                [states[i]["exp_avg"] for i in idx],
                [states[i]["exp_avg_sq"] for i in idx],
                [],
                steps,
                amsgrad=False,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )

    # -- checkpoints: torch.optim.Adam's layout ------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items()}
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        saved_groups = state_dict["param_groups"]
        sizes = [len(g["params"]) for g in saved_groups]
        if sizes != [len(g["params"]) for g in self.param_groups]:
            raise ValueError(
                "optimizer state does not match: parameter groups of sizes "
                f"{[len(g['params']) for g in self.param_groups]} expected, got {sizes}"
            )
        owner: dict[int, torch.Tensor] = {}
        for saved, group in zip(saved_groups, self.param_groups, strict=True):
            owner.update(zip(saved["params"], group["params"], strict=True))
            for key, value in saved.items():
                if key not in ("params", "fused", "foreach", "decoupled_weight_decay"):
                    group[key] = tuple(value) if key == "betas" else value
        self.state = {}
        for pid, saved_state in state_dict["state"].items():
            p = owner[pid]
            self.state[p] = {
                k: (
                    v.to(dtype=torch.float32, device=p.device if self.fused else "cpu")
                    if k == "step"
                    else v.to(dtype=p.dtype, device=p.device)
                ).clone()  # never share storage with the dict we were given
                for k, v in saved_state.items()
            }


def clip_grad_norm(params: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale the gradients so that their joint 2-norm is at most ``max_norm``; returns the norm
    before scaling. The same operations as ``torch.nn.utils.clip_grad_norm_`` (foreach norms, a
    clamped coefficient applied unconditionally), for gradients on one device and dtype."""
    grads: list[torch.Tensor] = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    with torch.no_grad():
        total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
        coef = torch.clamp(float(max_norm) / (total + 1e-6), max=1.0)
        torch._foreach_mul_(grads, coef)
    return total
