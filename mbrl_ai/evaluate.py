"""Deterministic evaluation on separate envs, and the ``python -m mbrl_ai.evaluate`` entry point.

    python -m mbrl_ai.evaluate run=<run dir> [episodes=20] [seed=123] [trust=true]
    python -m mbrl_ai.evaluate run=<run dir> video=true [video_episodes=1] [fps=30]

reloads the run's newest checkpoint and prints the mean and std of the evaluation return. A run
whose env id names a module (``module:Env-v0``) is refused unless ``trust=true``: importing it
would run code found where the command runs.

``video=true`` also records the policy playing ``video_episodes`` episodes with deterministic
actions from the evaluation's seed, as ``<run dir>/videos/<checkpoint>_seed<seed>.gif`` at
``fps`` frames per second, and prints the file's path. The GIF is bounded: each episode is cut
after ``VIDEO_MAX_STEPS`` steps (or the env's own time limit, or ``eval_max_steps`` for an env
without one, when shorter) and recording stops at ``VIDEO_MAX_FRAMES`` frames in all. GIF timing
has 10 ms steps, and viewers slow down frames shorter than 20 ms: above ``fps=50`` the video plays
slower than asked. The env must render ``rgb_array`` frames; classic-control and toy-text envs
need pygame (``pip install 'mbrl_ai[video]'``). That is checked before evaluating: an env that
cannot render is refused with one line and exit code 2.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from PIL import Image

from mbrl_ai.algos import load_plugins, load_policy
from mbrl_ai.config import Config, ConfigError
from mbrl_ai.core.checkpoint import CHECKPOINTS, STATE_FILE, CheckpointError, latest_checkpoint
from mbrl_ai.core.utils import unwritable
from mbrl_ai.envs import find_spec, make_env, make_vec_env
from mbrl_ai.modules import RunningMeanStd
from mbrl_ai.modules.actor import Policy
from mbrl_ai.runtime.evaluation import EVAL_SEED_OFFSET, evaluate_policy

__all__ = ["evaluate_policy", "main", "record_video", "rendering_problem"]

USAGE = (
    "usage: python -m mbrl_ai.evaluate run=<run dir> [episodes=N] [seed=S] [trust=true] "
    "[video=true [video_episodes=N] [fps=F]]"
)
# the lowest value of each integer argument
_COUNTS = {"episodes": 1, "seed": 0, "video_episodes": 1, "fps": 1}
_FLAGS = ("trust", "video")
VIDEO_MAX_STEPS = 1000
"""A recorded episode is cut after this many steps (the env's own limit when shorter)."""
VIDEO_MAX_FRAMES = 2000
"""Recording stops after this many frames in all: a palette frame of 600x400 is 240 kB, and
Pillow holds every frame (and a copy) until the GIF is written."""


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args is None:
        return 2
    try:
        load_plugins()
        actor, obs_rms, cfg = load_policy(Path(args["run"]), trust=args.get("trust") == "true")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CheckpointError as exc:
        print(f"error: run={args['run']!r}: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(cfg.torch_threads)  # the run's own setting (small nets: few threads)
    video = args.get("video") == "true"
    if video and (problem := rendering_problem(cfg.env, cfg.env_kwargs)) is not None:
        print(f"error: video=true: {problem}", file=sys.stderr)
        return 2
    if video and (problem := unwritable(video_path(Path(args["run"]), 0).parent)) is not None:
        print(f"error: video=true: {problem}", file=sys.stderr)
        return 2
    episodes = int(args.get("episodes", cfg.eval_episodes))
    seed = int(args.get("seed", cfg.seed + EVAL_SEED_OFFSET))
    envs = make_vec_env(
        cfg.env,
        min(cfg.eval_n_envs, episodes),
        cfg.seed,
        cfg.vectorization,
        cfg.env_kwargs,
        default_time_limit=cfg.eval_max_steps,
    )
    returns = evaluate_policy(actor, envs, episodes, seed, obs_rms)
    envs.close()
    print(
        f"{cfg.env} {cfg.algo.name}: mean return {returns.mean():.2f} ± {returns.std():.2f} over {len(returns)} episodes"
    )
    if video:
        path = video_path(Path(args["run"]), seed)
        frames = record_video(actor, obs_rms, cfg, int(args.get("video_episodes", 1)), seed)
        write_gif(frames, path, int(args.get("fps", 30)))
        cut = f", cut at {VIDEO_MAX_FRAMES}" if len(frames) >= VIDEO_MAX_FRAMES else ""
        print(f"video: {path} ({len(frames)} frames{cut})")
    return 0


def parse_args(argv: list[str]) -> dict[str, str] | None:
    """``key=value`` arguments, checked; None after printing one line on stderr."""
    allowed = ("run", *_COUNTS, *_FLAGS)
    for arg in argv:
        key = arg.split("=", 1)[0]
        if "=" not in arg or key not in allowed:
            what = "not key=value" if "=" not in arg else "unknown argument"
            print(f"error: {arg!r}: {what}; allowed: {', '.join(allowed)}", file=sys.stderr)
            return None
    args = dict(a.split("=", 1) for a in argv)
    if "run" not in args or len(args) != len(argv):
        problem = "run=<run dir> is required" if "run" not in args else "an argument repeats"
        print(f"error: {problem}; {USAGE}", file=sys.stderr)
        return None
    for key in _FLAGS:
        if args.get(key, "false") not in ("true", "false"):
            print(f"error: {key}={args[key]!r}: allowed: true, false", file=sys.stderr)
            return None
    for key, low in _COUNTS.items():
        value = args.get(key)
        if value is not None and not (value.isdigit() and int(value) >= low):
            print(f"error: {key}={value!r}: must be an integer >= {low}", file=sys.stderr)
            return None
    for key in ("video_episodes", "fps"):
        if key in args and args.get("video") != "true":
            print(f"error: {key}={args[key]!r}: needs video=true", file=sys.stderr)
            return None
    return args


def rendering_problem(env_id: str, env_kwargs: dict[str, Any]) -> str | None:
    """Why ``env_id`` cannot give ``rgb_array`` frames here, in one line (None when it can).

    One env is built with ``render_mode="rgb_array"``, reset and rendered once; the warnings of a
    failed attempt (Gymnasium's about render modes, GLFW's about a display) are not shown.
    """
    _render_offscreen()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            env = gym.make(find_spec(env_id), **{**env_kwargs, "render_mode": "rgb_array"})
        except Exception as exc:  # noqa: BLE001  (whatever the env raises: one line)
            return _why_not(env_id, exc)
        try:
            modes = env.metadata.get("render_modes") or []
            if "rgb_array" not in modes:
                return f"{env_id} cannot render rgb_array frames (its render modes: {modes})"
            env.reset(seed=0)
            frame = env.render()
        except Exception as exc:  # noqa: BLE001  (pygame missing, no OpenGL context ...)
            return _why_not(env_id, exc)
        finally:
            env.close()
    if not (isinstance(frame, np.ndarray) and frame.ndim == 3):
        return f"{env_id} rendered no RGB frame (got {type(frame).__name__})"
    return None


def _why_not(env_id: str, exc: BaseException) -> str:
    """The reason in ``exc`` that ``env_id`` cannot render, as one line."""
    text = str(exc).strip()
    if (isinstance(exc, ImportError) and exc.name == "pygame") or (
        isinstance(exc, gym.error.DependencyNotInstalled) and "pygame" in text
    ):
        return f"{env_id} needs pygame: pip install 'mbrl_ai[video]'"
    if isinstance(exc, TypeError) and "argument 'render_mode'" in text:
        return f"{env_id} cannot render frames (it takes no render_mode)"
    reason = (
        f"{env_id} cannot render frames: {text.splitlines()[0] if text else type(exc).__name__}"
    )
    if "OpenGL" in text and "MUJOCO_GL" not in os.environ:
        reason += " (MuJoCo without a display: set MUJOCO_GL=egl)"
    return reason


def _render_offscreen() -> None:
    """pygame draws ``rgb_array`` frames on a surface in memory: no display or sound is needed
    (without these, SDL prints lines about a missing display server on stderr)."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


class FrameRecorder(gym.Wrapper):
    """Keeps the frame after every reset and step of the first ``episodes`` episodes, up to
    ``limit`` frames, as palette images (a third of the memory of RGB; a GIF holds them so)."""

    def __init__(self, env: gym.Env, episodes: int, limit: int) -> None:
        super().__init__(env)
        self.frames: list[Image.Image] = []
        self._resets_left = episodes
        self._limit = limit

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        out = self.env.reset(seed=seed, options=options)
        if seed is None:  # the vector env's own reset at an episode's end: evaluation resets
            return out  # again with the next episode's seed, or plays no more
        self._resets_left -= 1
        self._capture()
        return out

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        out = self.env.step(action)
        self._capture()
        return out

    def _capture(self) -> None:
        if self._resets_left < 0 or len(self.frames) >= self._limit:
            return
        frame = Image.fromarray(np.asarray(self.env.render(), dtype=np.uint8))
        self.frames.append(frame.quantize(256, method=Image.Quantize.FASTOCTREE))


def record_video(
    actor: Policy,
    obs_rms: RunningMeanStd | None,
    cfg: Config,
    episodes: int,
    seed: int,
    max_frames: int = VIDEO_MAX_FRAMES,
) -> list[Image.Image]:
    """Frames of ``episodes`` deterministic episodes from ``seed``, played by
    :func:`~mbrl_ai.runtime.evaluation.evaluate_policy` on one env that renders; each episode is cut
    after ``VIDEO_MAX_STEPS`` steps, and at most ``max_frames`` frames are kept."""
    _render_offscreen()
    limit = min(find_spec(cfg.env).max_episode_steps or cfg.eval_max_steps, VIDEO_MAX_STEPS)
    kwargs = {**cfg.env_kwargs, "render_mode": "rgb_array", "max_episode_steps": limit}
    env = make_env(cfg.env, kwargs)
    recorder = FrameRecorder(env, episodes, max_frames)
    envs = SyncVectorEnv([lambda: recorder], autoreset_mode=AutoresetMode.SAME_STEP)
    try:
        evaluate_policy(actor, envs, episodes, seed, obs_rms)
    finally:
        envs.close()
    return recorder.frames


def video_path(run: Path, seed: int) -> Path:
    """``<run dir>/videos/<checkpoint>_seed<seed>.gif`` for a run directory or one of its
    checkpoint directories (the newest checkpoint of a run directory)."""
    ckpt = run if (run / STATE_FILE).is_file() else latest_checkpoint(run)
    assert ckpt is not None  # load_policy has read it
    run_dir = ckpt.parent.parent if ckpt.parent.name == CHECKPOINTS else run
    return run_dir / "videos" / f"{ckpt.name}_seed{seed}.gif"


def write_gif(frames: list[Image.Image], path: Path, fps: int) -> None:
    """An endlessly looping GIF, written atomically (a temporary file beside it, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # not mkstemp's: it would be 0600
    try:
        with tmp.open("wb") as f:
            frames[0].save(
                f,
                format="GIF",
                save_all=True,
                append_images=frames[1:],
                duration=1000 / fps,
                loop=0,
            )
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
