#!/usr/bin/env bash
# How much should MB-PPO imagine? max_planning_rollouts in {10, 50, 100, 400} (min stays 10;
# the count interpolates between them by confidence), CartPole-v1, 5 seeds each.
# SEEDS (a Hydra sweep value, e.g. 10,11,12 or "range(10,15)"), OUT (the sweep folder), JOBS and
# REPORT (where the report goes; default this folder) can be set in the environment.
set -euo pipefail
OUT=${OUT:-multirun/imagination_budget}
python -m mbrl_ai.train -m hydra/launcher=joblib hydra.launcher.n_jobs=${JOBS:-2} \
  hydra.sweep.dir="$OUT" seed=${SEEDS:-0,1,2,3,4} max_planning_rollouts=10,50,100,400 \
  curiosity=none world_model=ensemble ppo.minibatches=per_sample total_timesteps=30720 eval_every=2048 checkpoint_every=0 logger.progress=off
python -m mbrl_ai.report "$OUT" --out "${REPORT:-$(dirname "$0")}" --title "Imagination budget (CartPole-v1)"
