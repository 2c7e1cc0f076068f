#!/usr/bin/env bash
# Curiosity on or off on a dense-reward task: MB-PPO with RND (beta_init 0.2, the default) against
# curiosity=none, CartPole-v1, 5 seeds each.
# SEEDS (a Hydra sweep value, e.g. 10,11,12 or "range(10,15)"), OUT (the sweep folder), JOBS and
# REPORT (where the report goes; default this folder) can be set in the environment.
set -euo pipefail
OUT=${OUT:-multirun/curiosity_cartpole}
python -m mbrl_ai.train -m hydra/launcher=joblib hydra.launcher.n_jobs=${JOBS:-2} \
  hydra.sweep.dir="$OUT" seed=${SEEDS:-0,1,2,3,4} curiosity=none,rnd \
  world_model=ensemble ppo.minibatches=per_sample total_timesteps=30720 eval_every=2048 checkpoint_every=0 logger.progress=off
python -m mbrl_ai.report "$OUT" --out "${REPORT:-$(dirname "$0")}" --title "Curiosity on/off (CartPole-v1)"
