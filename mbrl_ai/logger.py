"""2.8 Logging: ``metrics.jsonl``, ``eval.jsonl``, a console progress bar and, optionally, W&B.

One x-axis everywhere: real environment steps (``env_steps``).

``eval.jsonl`` starts with a meta object (method, env_id, seed, threshold, device, versions, W&B
group), then one line per evaluation: env_steps, mean_return, std_return, returns, wall_s (since
the start) and train_wall_s (the same minus the time spent evaluating).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from tqdm import tqdm

from mbrl_ai.config import RUN_MANAGEMENT_KEYS, Config, config_dict, used_config_dict
from mbrl_ai.core.utils import JsonlWriter, filter_jsonl, versions

WandbMode = Literal["online", "offline", "disabled"]  # config.WANDB_MODES, as wandb.init types it


def wandb_group(cfg: Config) -> str:
    """The W&B group of a run: ``logger.group`` when set (the CLI sets it to the overrides without
    the seed), else the config without its seed as a short stable name.

    Seeds of one configuration share a group, which is what W&B comparison reports aggregate over.
    """
    if cfg.logger.group:
        return cfg.logger.group
    d = config_dict(cfg)
    for key in ("seed", "logger", *RUN_MANAGEMENT_KEYS):
        d.pop(key)
    digest = hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]
    return f"{cfg.algo.name}-{cfg.env}-{digest}"


class RunLogger:
    """Writes the run's metric files, drives the progress bar and mirrors everything to W&B.

    Nothing is opened until :meth:`open`, which either starts fresh files or, for a resumed run,
    cuts them back to the checkpoint's step and continues them (and the W&B run, by its id).
    """

    def __init__(self, out_dir: Path, cfg: Config, threshold: float | None, device: str) -> None:
        self.out_dir = Path(out_dir)
        self.cfg = cfg
        self.threshold = threshold
        self.device = device
        self.start = time.perf_counter()
        self.eval_seconds = 0.0
        self.last_eval: float | None = None
        self.wandb_run: Any = None

    def open(
        self, env_steps: int = 0, resume: dict[str, Any] | None = None, eval_pending: bool = False
    ) -> None:
        """Start logging at ``env_steps``; ``resume`` is :meth:`state_dict` of the checkpoint;
        ``eval_pending``: its evaluation at ``env_steps`` was stopped unfinished (and runs again)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        metrics, evals = self.out_dir / "metrics.jsonl", self.out_dir / "eval.jsonl"
        if resume is not None:  # drop what was logged after the checkpoint: it is logged again
            last_eval = env_steps - 1 if eval_pending else env_steps
            filter_jsonl(metrics, lambda r: r.get("env_steps", 0) <= env_steps)
            filter_jsonl(evals, lambda r: r.get("meta", False) or r["env_steps"] <= last_eval)
            self.start = time.perf_counter() - resume["wall_s"]
            self.eval_seconds = resume["eval_s"]
            self.last_eval = resume["last_eval"]
        self.metrics = JsonlWriter(metrics, fresh=resume is None)
        self.evals = JsonlWriter(evals, fresh=resume is None)
        if resume is None or not evals.stat().st_size:
            self.evals.write(
                {
                    "meta": True,
                    "method": self.cfg.algo.name,
                    "env_id": self.cfg.env,
                    "seed": self.cfg.seed,
                    "threshold": self.threshold,
                    "device": self.device,
                    "group": wandb_group(self.cfg),
                    "versions": versions(),
                }
            )
        disable = {"auto": None, "on": False, "off": True}[self.cfg.logger.progress]
        self.bar = tqdm(
            total=self.cfg.total_timesteps,
            initial=env_steps,
            unit="step",
            disable=disable,
            dynamic_ncols=True,
            smoothing=0.1,
        )
        if self.cfg.logger.name == "wandb":
            self.wandb_run = self._start_wandb(resume["wandb_id"] if resume else None)

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue the clocks and the W&B run."""
        return {
            "wall_s": time.perf_counter() - self.start,
            "eval_s": self.eval_seconds,
            "last_eval": self.last_eval,
            "wandb_id": self.wandb_run.id if self.wandb_run is not None else None,
        }

    def _start_wandb(self, run_id: str | None) -> Any:
        import wandb

        lg = self.cfg.logger
        return wandb.init(
            project=lg.project,
            entity=lg.entity,
            mode=cast(WandbMode, lg.mode),  # one of WANDB_MODES: LoggerConfig.check
            dir=str(self.out_dir),
            config=used_config_dict(self.cfg),
            group=wandb_group(self.cfg),
            job_type=self.cfg.algo.name,
            tags=list(lg.tags),
            name=f"{wandb_group(self.cfg)}-s{self.cfg.seed}",
            id=run_id,
            resume="allow" if run_id else None,
        )

    @property
    def train_seconds(self) -> float:
        """Wall time since the start, evaluation excluded."""
        return time.perf_counter() - self.start - self.eval_seconds

    def log_iteration(self, env_steps: int, record: dict[str, Any]) -> None:
        """One line of ``metrics.jsonl`` (and a W&B step); advances the progress bar."""
        row = {
            "env_steps": env_steps,
            **record,
            "wall_s": time.perf_counter() - self.start,
            "train_wall_s": self.train_seconds,
        }
        self.metrics.write(row)
        if self.wandb_run is not None:
            self.wandb_run.log(row, step=env_steps)
        self.bar.update(env_steps - self.bar.n)
        postfix = {"eval": f"{self.last_eval:.1f}"} if self.last_eval is not None else {}
        if record.get("episode_return") is not None:
            postfix["ep_ret"] = f"{record['episode_return']:.1f}"
        self.bar.set_postfix(postfix, refresh=False)

    def log_eval(
        self,
        env_steps: int,
        returns: np.ndarray,
        eval_seconds: float,
        extra: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        """One line of ``eval.jsonl`` (with the ``extra`` fields); ``eval_seconds`` is excluded
        from ``train_wall_s`` from now on."""
        self.eval_seconds += eval_seconds
        row: dict[str, Any] = {
            "env_steps": env_steps,
            "mean_return": float(np.mean(returns)),
            "std_return": float(np.std(returns)),
            "returns": [float(r) for r in returns],
            "wall_s": time.perf_counter() - self.start,
            "train_wall_s": self.train_seconds,
            **(extra or {}),
        }
        self.evals.write(row)
        self.last_eval = row["mean_return"]
        if self.cfg.logger.progress == "auto" and self.bar.disable:  # output is not a terminal
            print(
                f"[{env_steps}/{self.cfg.total_timesteps} real steps] eval return "
                f"{row['mean_return']:.1f} ± {row['std_return']:.1f}"
                + "".join(f", {k} {v:.4g}" for k, v in (extra or {}).items()),
                file=sys.stderr,
                flush=True,
            )
        if self.wandb_run is not None:
            self.wandb_run.log(
                {
                    "eval/mean_return": row["mean_return"],
                    "eval/std_return": row["std_return"],
                    **{f"eval/{k}": v for k, v in (extra or {}).items()},
                },
                step=env_steps,
            )
        return row

    def close(self, exit_code: int = 0) -> None:
        """Close the files and the W&B run; a non-zero ``exit_code`` marks it as not finished
        (interrupted runs as preempting, so that W&B expects them back)."""
        if not hasattr(self, "metrics"):  # never opened
            return
        self.bar.close()
        self.metrics.close()
        self.evals.close()
        if self.wandb_run is not None:
            if exit_code in (130, 143):
                self.wandb_run.mark_preempting()
            self.wandb_run.finish(exit_code=exit_code)


def mbppo_metrics(
    confidence: float,
    n_rollouts: int,
    beta: float,
    reward_slope: float,
    update: dict[str, float],
    model: dict[str, float],
    real_reward: float,
    n_real: int,
    imagined: dict[str, float],
    extra: dict[str, float],
    seconds: dict[str, float],
) -> dict[str, float]:
    """Section 2.8's record of one MB-PPO iteration: the pseudocode's seven keys first
    (``confidence, imagined_rollouts, beta, policy_loss, value_loss, model_loss,
    mean_real_reward``), then the sample counts, the update's other statistics (split real /
    imagined), the imagination's depth, the model's diagnostics (``model`` holds ``model_loss``
    and the ``model/*`` keys), ``extra`` (curiosity, STEVE's value variance, the learning rate),
    and each section's time with the throughput of collection and imagination."""
    n_imagined = imagined["imagined_transitions"]
    imagine_s = seconds["imagine_s"]
    return {
        "confidence": confidence,
        "imagined_rollouts": n_rollouts,
        "beta": beta,
        "policy_loss": update["policy_loss"],
        "value_loss": update["value_loss"],
        "model_loss": model["model_loss"],
        "mean_real_reward": real_reward,
        "imagined_transitions": n_imagined,
        "real_transitions": n_real,
        "reward_slope": reward_slope,
        **{k: v for k, v in update.items() if k not in ("policy_loss", "value_loss")},
        "imagined_depth": imagined["imagined_depth"],
        "imagined_mean_depth": imagined["imagined_mean_depth"],
        **{k: v for k, v in model.items() if k != "model_loss"},
        **extra,
        **seconds,
        "real_steps_per_s": n_real / seconds["collect_s"],
        "imagined_steps_per_s": n_imagined / imagine_s if imagine_s > 0 else 0.0,
    }
