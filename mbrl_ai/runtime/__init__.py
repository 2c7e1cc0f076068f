"""The run lifecycle every training loop shares, in two parts:

- :class:`RunContext` (``context.py``): the environments, the counters, the evaluation schedule
  and the metric logs of one run; knows nothing of networks beyond the policy it evaluates.
- :class:`Checkpointer` (``checkpointer.py``): the objects a loop asks it to track, atomic
  checkpoints of them and of the run context, exact resumption, SIGINT / SIGTERM handling and the
  hand-off to a job manager (submitit requeues a preempted SLURM job).

A loop reads:

    run = start_run(cfg, out_dir)          # seed, envs, logs, counters
    agent = build_..._agent(cfg, run.info, run.device)
    ckpt = Checkpointer(run)
    ckpt.track(**agent.objects())          # + the loop's own modules, buffers, optimisers
    run.evaluate_with(agent.actor, agent.obs_rms)
    with run, ckpt:
        loop = ckpt.begin()                # resumes from the run directory's newest checkpoint
        while run.env_steps < cfg.total_timesteps:
            ...                            # the sections
            run.maybe_evaluate()
            run.log_iteration({...})
            ckpt.end_iteration(beta=beta)  # checkpoint when due; stop here on SIGINT / SIGTERM
        ckpt.finish(beta=beta)             # the final checkpoint
    return run.result()

Algorithm-specific pieces (PPO's normalisers and learning-rate annealing, SAC's three optimisers)
belong to the algorithm's agent (``agent.py``, ``algos/sac.py``), not to the run.
"""

from mbrl_ai.runtime.checkpointer import (
    CHECKPOINT_FORMAT,
    STOP_SIGNALS,
    Checkpointer,
    watch_iterations,
)
from mbrl_ai.runtime.context import EPISODE_RETURN_WINDOW, RunContext, RunResult, start_run

__all__ = [
    "CHECKPOINT_FORMAT",
    "EPISODE_RETURN_WINDOW",
    "STOP_SIGNALS",
    "Checkpointer",
    "RunContext",
    "RunResult",
    "start_run",
    "watch_iterations",
]
