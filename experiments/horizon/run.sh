#!/usr/bin/env bash
# Does planning_horizon matter? MB-PPO (pseudocode defaults, curiosity off) on CartPole-v1,
# H in {1, 3, 5, 10}, 5 seeds each, two runs at a time; then the report of the sweep.
# SEEDS (a Hydra sweep value, e.g. 10,11,12 or "range(10,15)"), OUT (the sweep folder), JOBS and
# REPORT (where the report goes; default this folder) can be set in the environment.
set -euo pipefail
OUT=${OUT:-multirun/horizon}
python -m mbrl_ai.train -m hydra/launcher=joblib hydra.launcher.n_jobs=${JOBS:-2} \
  hydra.sweep.dir="$OUT" seed=${SEEDS:-0,1,2,3,4} planning_horizon=1,3,5,10 \
  curiosity=none world_model=ensemble ppo.minibatches=per_sample total_timesteps=30720 eval_every=2048 checkpoint_every=0 logger.progress=off
python -m mbrl_ai.report "$OUT" --out "${REPORT:-$(dirname "$0")}" --title "Planning horizon (CartPole-v1)"
