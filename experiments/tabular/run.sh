#!/usr/bin/env bash
# The tabular-observation runs behind experiments/tabular/README.md, one at a time.
# Usage: bash experiments/tabular/run.sh [out dir]   (default: experiments/tabular/raw, git-ignored)
set -euo pipefail
OUT=${1:-experiments/tabular/raw}
train() { python -m mbrl_ai.train logger.progress=off "$@"; }

# FrozenLake-v1 8x8, no slipping: the preset (chosen on seed 0), seeds 0-7, 40k real steps
for s in 0 1 2 3 4 5 6 7; do
  train experiment=ppo_frozenlake8x8 seed=$s hydra.run.dir=$OUT/frozenlake_preset_seed$s
done
# ... and with per-minibatch advantage normalisation (PPO's default): seeds 0 and 1 at 30k steps,
# then seed 0 at 80k with a larger entropy bonus and 10 epochs
for s in 0 1; do
  train algo=ppo env=FrozenLake-v1 +env_kwargs.is_slippery=false +env_kwargs.map_name=8x8 \
    total_timesteps=30000 n_envs=4 n_real_steps=512 batch_size=128 lr_actor_critic=1e-3 \
    ppo.ent_coef=0.01 eval_every=2048 eval_episodes=5 curiosity=none seed=$s \
    hydra.run.dir=$OUT/frozenlake_normadv_30k_seed$s
done
train experiment=ppo_frozenlake8x8 ppo.normalize_advantage=true ppo.ent_coef=0.05 n_epochs=10 \
  total_timesteps=80000 seed=0 hydra.run.dir=$OUT/frozenlake_normadv_seed0

# Taxi-v4, seed 0: PPO with and without advantage normalisation, then MB-PPO with RND
COMMON="env=Taxi-v4 n_envs=8 lr_actor_critic=1e-3 eval_episodes=5 seed=0 curiosity=none"
train algo=ppo $COMMON n_real_steps=1024 batch_size=256 n_epochs=10 ppo.ent_coef=0.01 \
  total_timesteps=80000 eval_every=4096 hydra.run.dir=$OUT/taxi_ppo_normadv_80k
train algo=ppo $COMMON n_real_steps=1024 batch_size=256 n_epochs=4 ppo.ent_coef=0.01 \
  ppo.normalize_advantage=false total_timesteps=150000 eval_every=8192 hydra.run.dir=$OUT/taxi_ppo_150k
train algo=ppo $COMMON n_real_steps=2048 batch_size=256 n_epochs=10 ppo.ent_coef=0.02 \
  total_timesteps=250000 eval_every=8192 hydra.run.dir=$OUT/taxi_ppo_normadv
train algo=ppo $COMMON n_real_steps=2048 batch_size=512 n_epochs=4 ppo.ent_coef=0.05 \
  ppo.normalize_advantage=false total_timesteps=400000 eval_every=16384 hydra.run.dir=$OUT/taxi_ppo
train algo=mbppo env=Taxi-v4 curiosity=rnd curiosity.intrinsic_head=true n_envs=8 \
  n_real_steps=2048 batch_size=512 n_epochs=4 lr_actor_critic=1e-3 ppo.normalize_advantage=false \
  ppo.ent_coef=0.01 total_timesteps=200000 eval_every=16384 eval_episodes=5 seed=0 \
  hydra.run.dir=$OUT/taxi_mbppo_rnd
# ... and two 2M-step PPO runs with 16 envs
T2M="env=Taxi-v4 n_envs=16 n_real_steps=4096 batch_size=1024 n_epochs=4 lr_actor_critic=5e-4 \
  total_timesteps=2000000 eval_every=65536 eval_episodes=5 curiosity=none seed=0"
train algo=ppo $T2M ppo.normalize_advantage=false ppo.ent_coef=0.05 hydra.run.dir=$OUT/taxi_ppo_2m
train algo=ppo $T2M ppo.ent_coef=0.1 hydra.run.dir=$OUT/taxi_ppo_2m_normadv
