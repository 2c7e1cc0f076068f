"""Entry point: compose → validate → dispatch on ``cfg.algo.name`` through ``mbrl_ai.algos``.

    python -m mbrl_ai.train env=CartPole-v1 planning_horizon=5
    python -m mbrl_ai.train experiment=ppo_cartpole seed=3
    python -m mbrl_ai.train -m seed=0,1,2 lr_actor_critic=3e-4,1e-3
    python -m mbrl_ai.train -m tune=ppo_cartpole
    python -m mbrl_ai.train resume=outputs/mbppo/CartPole-v1/<run> total_timesteps=200000

Bad input is refused before any work: every override (every value of a sweep) is composed and
checked first, and the first problem is printed as one line on stderr with exit code 2. So is an
output directory that cannot be written, a missing or damaged checkpoint to resume from, and a run
directory whose checkpoint was made with another config.

A run directory that holds a checkpoint is resumed, not overwritten: the same command with the same
``hydra.run.dir`` (what a requeued cluster job runs) continues where the run stopped. SIGINT and
SIGTERM finish the iteration, write a checkpoint and exit with 130 / 143; a non-finite policy loss
or environment output stops the run with one line and exit code 1.
"""

from __future__ import annotations

import dataclasses
import fcntl
import importlib.util
import os
import socket
import sys
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep
from omegaconf import DictConfig, OmegaConf

from mbrl_ai import algos
from mbrl_ai.algos import check_spaces, config_schema, to_config
from mbrl_ai.analysis.report import plot_run
from mbrl_ai.cli.help import help_text
from mbrl_ai.config import (
    RESUME_MAY_CHANGE,
    SCORING_KEYS,
    Config,
    ConfigError,
    config_dict,
    reads_key,
    schema_node,
    schema_type,
    unknown_key,
    used_config_dict,
)
from mbrl_ai.core.checkpoint import CheckpointError, latest_checkpoint, read_checkpoint
from mbrl_ai.core.errors import NonFiniteError, RunInterrupted
from mbrl_ai.core.stats import steps_to_threshold
from mbrl_ai.core.utils import device_unavailable
from mbrl_ai.envs import inspect_env, refuse_untrusted_module
from mbrl_ai.tune.objective import score as objective_score
from mbrl_ai.tune.trial import TRIAL_FILE, run_trial

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
# ``${or_default:a,b}``: a unless it is empty (sweep folders of runs without overrides)
OmegaConf.register_new_resolver("or_default", lambda value, default: value or default, replace=True)

# Flags after which Hydra does something other than a plain run (help, printing the config, another
# primary config or package): the pre-check steps aside and leaves them to Hydra.
_HYDRA_ONLY_FLAGS = frozenset(
    [
        "--help",
        "-h",
        "--hydra-help",
        "--version",
        "--cfg",
        "-c",
        "--info",
        "-i",
        "--shell-completion",
        "-sc",
        "--package",
        "-p",
        "--config-name",
        "-cn",
        "--config-path",
        "-cp",
        "--config-dir",
        "-cd",
        "--experimental-rerun",
    ]
)


def prepare() -> None:
    """Import plugin algorithms, then give Hydra the root schema with every registered
    algorithm's nodes (raises ConfigError for a plugin that cannot be imported)."""
    algos.load_plugins()
    ConfigStore.instance().store(name="base_config", node=config_schema())


# held by the process that trains into a run directory (``run_lock``)
LOCK_FILE = ".lock"


def check_run(cfg: Config) -> None:
    """Checks that need the machine or the environment: the device exists here, the id exists and
    the algorithm handles its spaces; a trial scored by steps to threshold has a threshold."""
    check_device(cfg.device)
    info = inspect_env(cfg.env, cfg.env_kwargs)
    check_spaces(info, cfg.algo.name, cfg)
    threshold = cfg.eval_threshold if cfg.eval_threshold is not None else info.reward_threshold
    if is_trial(cfg) and cfg.tune.objective == "steps_to_threshold" and threshold is None:
        raise ConfigError(
            "tune.objective",
            cfg.tune.objective,
            f"{cfg.env} has no reward threshold: set eval_threshold, or use auc or final_return",
        )


def is_trial(cfg: Config) -> bool:
    """Several seeds (``tune.seeds``) or an Optuna trial: :func:`mbrl_ai.tune.trial.run_trial`."""
    return bool(cfg.tune.seeds) or cfg.tune.trial is not None


def check_device(name: str) -> None:
    """``device`` names hardware this machine has (``auto`` always does)."""
    missing = device_unavailable(name)
    if missing is not None:
        raise ConfigError("device", name, f"{missing}; allowed here: auto, cpu")


@contextmanager
def run_lock(out_dir: Path, record: bool = True) -> Iterator[None]:
    """Hold ``out_dir/.lock`` for the run's life, so that no second process trains into the same
    directory (``record``: write this process into the file, for the next one's error line). The
    operating system drops the lock when its process dies, however it dies."""
    path = out_dir / LOCK_FILE
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConfigError(
            "hydra.run.dir", str(out_dir), f"in use by {holder}: wait for it or choose another"
        ) from None
    if record:
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


# ----------------------------------------------------------------------------------------------
# pre-check of the command line
# ----------------------------------------------------------------------------------------------


def _groups() -> dict[str, list[str]]:
    """Config group → its options: the YAML files under ``conf/`` and what plugins stored."""
    groups = {
        g.name: sorted(p.stem for p in g.glob("*.yaml"))
        for g in Path(CONF_DIR).iterdir()
        if g.is_dir() and g.name != "hydra"  # Hydra's own groups: hydra/sweeper=optuna
    }
    store = ConfigStore.instance()
    for name in store.list(""):
        if name in groups:
            stored = (o.removesuffix(".yaml") for o in store.list(name))
            groups[name] = sorted(set(groups[name]) | set(stored))
    return groups


def _check_override_key(key: str, value: Any, groups: dict[str, list[str]]) -> None:
    """Refuse an override of a key the schema does not have, or of a group that is not there."""
    if key.startswith("hydra") or key.split(".")[0] == "env_kwargs":
        return  # env_kwargs: the environment itself checks them (check_run)
    if "/" in key or key in groups:
        if key.split("/")[0] not in groups:
            raise ConfigError(
                key,
                value,
                f"unknown config group; allowed: {', '.join(sorted(groups))}",
            )
        return
    if schema_type(key, config_schema()) is None:
        parent = schema_node(key.rpartition(".")[0], config_schema())
        known = [f.name for f in dataclasses.fields(parent)] if parent is not None else []
        raise unknown_key(key, value, known)


def _compose(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def compose_config(overrides: list[str]) -> Config:
    """The checked Config that ``python -m mbrl_ai.train <overrides>`` runs (for scripts and tests)."""
    prepare()
    return to_config(_compose(overrides))


def _composition_error(exc: Exception, overrides: list[str]) -> ConfigError:
    """Turn Hydra's multi-line composition error into one ConfigError line."""
    cause = exc.__cause__ or exc
    key = getattr(cause, "full_key", None) or ""
    message = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    value: Any = None
    for o in overrides:
        k, _, v = o.lstrip("+~").partition("=")
        if k == key or (not key and k in str(exc)):
            key, value = k, v
    if key.startswith("env_kwargs.") and "not in struct" in message:
        return ConfigError(key, value, f"a new key needs a '+': +{key}={value}")
    expected = schema_type(key, config_schema()) if key else None
    lowered = message.lower()
    if expected is not None and ("could not be converted" in lowered or "is not a" in lowered):
        message = f"expected {expected}"
    return ConfigError(key or "override", value, message)


# Flags that print the composed config (with their arguments): what they print is checked first.
_PRINT_FLAGS = {
    "--cfg": ("job", "hydra", "all"),
    "-c": ("job", "hydra", "all"),
    "--info": ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath"),
    "-i": ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath"),
    "--package": None,  # any package name
    "-p": None,
}


def _without_print_flags(argv: list[str]) -> list[str]:
    """``argv`` without ``--cfg job``, ``--info`` and ``--package X`` (and their arguments)."""
    rest: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in _PRINT_FLAGS:
            choices = _PRINT_FLAGS[arg]
            following = argv[i + 1] if i + 1 < len(argv) else None
            skip = following is not None and (choices is None or following in choices)
            continue
        rest.append(arg)
    return rest


def precheck(argv: list[str]) -> None:
    """Compose and validate every configuration the command line asks for; raise ConfigError."""
    prepare()
    argv = _without_print_flags(argv)
    if any(arg in _HYDRA_ONLY_FLAGS for arg in argv):
        return
    overrides = [arg for arg in argv if arg not in ("-m", "--multirun")]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError("override", " ".join(overrides), f"cannot parse: {first}") from None

    groups = _groups()
    multirun = any(arg in ("-m", "--multirun") for arg in argv)
    out_key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    hydra_values = {o.key_or_group: o.value() for o in parsed if o.key_or_group.startswith("hydra")}
    _check_launcher(hydra_values.get("hydra/launcher"))
    _check_writable(out_key, str(hydra_values.get(out_key, ".")))
    resume = next((o.value() for o in parsed if o.key_or_group == "resume"), None)
    saved_env = None
    if resume is not None:
        saved_env = _check_resume_dir(str(resume))
        named_env = next((o.value() for o in parsed if o.key_or_group == "env"), None)
        # resuming imports the module a saved ``module:Env-v0`` names: only when the command
        # line names it too
        refuse_untrusted_module(
            saved_env,
            trust=named_env == saved_env,
            how=f"name it on the command line if you trust it: env={saved_env}",
        )
    if not multirun:  # refused before Hydra writes its own files into a directory in use
        named = resume if resume is not None else hydra_values.get(out_key)
        if named is not None and (Path(str(named)) / LOCK_FILE).is_file():
            with run_lock(Path(str(named)), record=False):
                pass
    if multirun:
        parsed = [*parsed, *_optuna_params(parsed)]
    base: list[str] = []
    sweeps: list[tuple[str, list[str]]] = []  # (prefix 'key=' with +/~ markers, values)
    for o in parsed:
        key = o.key_or_group
        if key.startswith("hydra") and o.is_sweep_override():
            raise ConfigError(
                key,
                (o.input_line or "").partition("=")[2],
                "Hydra's own keys are not swept; an Optuna search space is <key>=<sweep>, e.g. "
                "'gamma=choice(0.95,0.99)', or a quoted hydra.sweeper.params.<key> value",
            )
        if key.startswith("hydra"):
            continue
        assert o.input_line is not None  # parse_overrides keeps every override's text
        same_env = key == "env" and o.value() == saved_env
        if (
            resume is not None
            and key.lstrip("+~").split(".")[0] not in RESUME_MAY_CHANGE
            and not same_env
        ):
            raise ConfigError(
                key,
                o.input_line.partition("=")[2],
                f"cannot change with resume (the run keeps its saved config); allowed: "
                f"{', '.join(RESUME_MAY_CHANGE)}",
            )
        value = None if o.is_delete() else (o.input_line.partition("=")[2])
        _check_override_key(key, value, groups)
        prefix = o.input_line.partition("=")[0] + "="
        if o.is_sweep_override():
            values = _sweep_values(o)
            sweeps.append((prefix, values))
            base.append(prefix + values[0])
        else:
            if key in groups and isinstance(o.value(), str) and o.value() not in groups[key]:
                raise ConfigError(
                    key, o.value(), f"no such option; allowed: {', '.join(groups[key])}"
                )
            base.append(o.input_line)

    candidates = [base]
    for prefix, values in sweeps:
        for v in values[1:]:
            candidates.append([prefix + v if o.startswith(prefix) else o for o in base])
    checked: set[tuple[str, str]] = set()
    for ovr in candidates:
        try:
            composed = _compose(ovr)
        except ConfigError:
            raise
        except Exception as exc:
            raise _composition_error(exc, ovr) from None
        cfg = to_config(composed)
        _check_explicit_curiosity(ovr, cfg)
        _check_unread(ovr, cfg)
        if (cfg.env, cfg.algo.name) not in checked:
            check_run(cfg)
            checked.add((cfg.env, cfg.algo.name))


def _sweep_values(o: Any) -> list[str]:
    """The values of a sweep override to check: all of a list, the ends of an interval."""
    value = o.value()
    if isinstance(value, IntervalSweep):  # for optimising sweepers: sampled, not enumerated
        assert value.start is not None and value.end is not None
        ends = [value.start, value.end]
        return [str(int(v)) if "int" in value.tags else repr(float(v)) for v in ends]
    return list(o.sweep_string_iterator())


def _optuna_params(parsed: list[Any]) -> list[Any]:
    """With the Optuna sweeper (``hydra/sweeper=optuna``, as such or from a preset): its
    ``hydra.sweeper.params`` as parsed overrides, so that they are checked like the command
    line's; ConfigError without Optuna installed."""
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            composed = compose(config_name="config", overrides=fixed, return_hydra_config=True)
    except Exception:  # the checks that follow name the problem
        return []
    target = str(OmegaConf.select(composed, "hydra.sweeper._target_", default=""))
    if not target.endswith("mbrl_ai_sweeper.OptunaSweeper"):
        return []
    if importlib.util.find_spec("optuna") is None:
        raise ConfigError("hydra/sweeper", "optuna", "needs optuna: pip install 'mbrl_ai[tune]'")
    params = OmegaConf.select(composed, "hydra.sweeper.params") or {}
    lines = [f"{k}={v}" for k, v in params.items()]
    try:
        return list(OverridesParser.create().parse_overrides(lines))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(
            "hydra.sweeper.params", " ".join(lines), f"cannot parse: {first}"
        ) from None


def _check_explicit_curiosity(overrides: list[str], cfg: Config) -> None:
    """A curiosity module named on the command line for an algorithm that has none is refused
    (the defaults' curiosity is simply unused by such an algorithm)."""
    named = [o.partition("=")[2] for o in overrides if o.lstrip("+").partition("=")[0] in (
        "curiosity", "curiosity.name")]  # fmt: skip
    if named and named[-1] != "none" and not algos.get(cfg.algo.name).curiosity:
        able = [n for n in algos.names() if algos.get(n).curiosity]
        raise ConfigError(
            "curiosity",
            named[-1],
            f"algo={cfg.algo.name} has no curiosity bonus; use curiosity=none, or an algorithm "
            f"with one: {', '.join(able)}",
        )


def _check_unread(overrides: list[str], cfg: Config) -> None:
    """A key set on the command line that the chosen algorithm does not read is refused: the run
    would not be what its command line says (``curiosity``: :func:`_check_explicit_curiosity`)."""
    for o in overrides:
        key = o.lstrip("+~").partition("=")[0]
        if key.split(".")[0] in ("curiosity", "hydra") or schema_type(key, config_schema()) is None:
            continue  # group choices (experiment=...) and hydra keys
        if not reads_key(cfg.algo.name, key):
            raise ConfigError(
                key,
                o.partition("=")[2],
                f"algo={cfg.algo.name} does not read this key; drop it, or choose an algorithm "
                f"that does",
            )


def _check_writable(key: str, path: str) -> None:
    """The output directory can be created and written (its nearest existing ancestor is a
    writable directory); interpolations like ``${now:...}`` are checked up to where they start."""
    existing = Path(path.split("${")[0] or ".").absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(key, path, f"cannot write there: {existing} is not a writable directory")


_LAUNCHER_PLUGINS = {
    "joblib": "hydra_joblib_launcher",
    "submitit": "hydra_submitit_launcher",
    "ray": "hydra_ray_launcher",
}


def _check_launcher(name: Any) -> None:
    """``hydra/launcher=joblib|submitit_*|ray`` needs its plugin: say how to get it, in one line."""
    if not isinstance(name, str):
        return
    plugin = next((m for k, m in _LAUNCHER_PLUGINS.items() if name.startswith(k)), None)
    if plugin is None:
        return
    if importlib.util.find_spec(f"hydra_plugins.{plugin}") is None:
        raise ConfigError(
            "hydra/launcher",
            name,
            f"needs {plugin.replace('_', '-')}: pip install 'mbrl_ai[sweeps]'",
        )


def _check_resume_dir(path: str) -> str:
    """``resume=<dir>``: the directory exists, is writable and holds a readable checkpoint;
    returns the env id it was trained on."""
    if not Path(path).is_dir():
        raise ConfigError("resume", path, "no such directory")
    _check_writable("resume", path)
    if latest_checkpoint(Path(path)) is None:
        raise ConfigError("resume", path, "no checkpoint in that directory (checkpoints/step_*)")
    try:
        state, _ = read_checkpoint(Path(path))
    except CheckpointError as exc:
        raise ConfigError("resume", path, str(exc)) from None
    env = state["config"].get("env") if isinstance(state["config"], dict) else None
    if not isinstance(env, str):
        raise ConfigError("resume", path, "its checkpoint's config names no env")
    return env


# ----------------------------------------------------------------------------------------------
# the Hydra task
# ----------------------------------------------------------------------------------------------


def check_resumable(cfg: Config, out_dir: Path) -> None:
    """A run directory with a checkpoint resumes only the config that wrote it (the keys in
    ``RESUME_MAY_CHANGE`` aside); its checkpoint, both parts, must be readable."""
    if latest_checkpoint(out_dir) is None:
        return
    try:
        state, _ = read_checkpoint(out_dir)
    except CheckpointError as exc:
        raise ConfigError("hydra.run.dir", str(out_dir), str(exc)) from None
    saved, now = _flatten(state["config"]), _flatten(config_dict(cfg))
    # a key the checkpoint predates ran with the value that is now its default
    defaults = _flatten(config_dict(config_schema()()))
    for key in sorted(set(saved) | set(now)):
        was = saved.get(key, defaults.get(key))
        if key.split(".")[0] in (*RESUME_MAY_CHANGE, *SCORING_KEYS) or was == now.get(key):
            continue
        raise ConfigError(
            key,
            now.get(key),
            f"the checkpoint in {out_dir} was written with {key}={was!r}; a run "
            f"directory resumes its own config only (use another hydra.run.dir to start afresh)",
        )


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            flat |= _flatten(v, f"{prefix}{k}.")
        else:
            flat[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return flat


def resumed_config(cfg: Config, overrides: list[str]) -> Config:
    """For ``resume=<dir>``: the config saved in the checkpoint, with the keys of
    ``RESUME_MAY_CHANGE`` that the command line set taken from ``cfg``."""
    assert cfg.resume is not None
    state, _ = read_checkpoint(Path(cfg.resume), with_arrays=False)
    saved = OmegaConf.create(state["config"])
    given = OmegaConf.create(config_dict(cfg))
    for override in overrides:
        key = override.lstrip("+~").partition("=")[0]
        if key.split(".")[0] in RESUME_MAY_CHANGE:
            OmegaConf.update(saved, key, OmegaConf.select(given, key), merge=False)
    saved.resume = cfg.resume
    return to_config(saved)


def run(cfg: Config, out_dir: Path) -> Any:
    """Train ``cfg`` into ``out_dir`` (the function tests and scripts call without Hydra);
    resumes the run if ``out_dir`` holds a checkpoint of it."""
    check_run(cfg)
    out_dir = Path(out_dir)
    check_resumable(cfg, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(out_dir):
        check_resumable(cfg, out_dir)  # again: the lock's holder may have just checkpointed
        config_yaml = OmegaConf.to_yaml(OmegaConf.create(used_config_dict(cfg)))
        (out_dir / "config.yaml").write_text(config_yaml)
        return algos.get(cfg.algo.name).train(cfg, out_dir)


class InvalidTrial(ValueError):
    """An Optuna trial sampled values that the config checks refuse (the sweeper marks it failed)."""


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _task(dcfg: DictConfig) -> float | None:
    try:
        prepare()  # again: a launcher's worker process may run this task alone
        cfg = to_config(dcfg)
        hydra_cfg = HydraConfig.get()
        out_dir = Path(hydra_cfg.runtime.output_dir)
        if cfg.logger.group is None and hydra_cfg.job.override_dirname:
            # the sweep folder's name, with ':' for '=' (W&B report filters read '=' as an operator)
            cfg.logger.group = hydra_cfg.job.override_dirname.replace("=", ":")
        if cfg.resume is not None:
            if is_trial(cfg):
                raise ConfigError("resume", cfg.resume, "resumes one run: drop tune.seeds (a "
                                  "trial continues when the same command runs again)")  # fmt: skip
            out_dir = Path(cfg.resume)
            cfg = resumed_config(cfg, list(hydra_cfg.overrides.task))
        check_run(cfg)
        check_resumable(cfg, out_dir)
    except ConfigError as exc:
        if OmegaConf.select(dcfg, "tune.trial") is not None:
            # a sampled combination the checks refuse: that trial fails, the study goes on
            raise InvalidTrial(str(exc)) from None
        _fail(exc)
    if is_trial(cfg):
        return _trial_task(cfg, out_dir)
    saved = latest_checkpoint(out_dir) if out_dir.is_dir() else None
    start = f"resuming {saved}" if saved is not None else "a new run"
    print(f"{cfg.algo.name} on {cfg.env}, seed {cfg.seed}: {start} in {out_dir}", flush=True)
    with _run_errors(out_dir):
        result = run(cfg, out_dir)
    evals = getattr(result, "evals", None) or []
    try:
        plot_run(out_dir)
    except OSError as exc:
        print(io_error_line(exc, out_dir), file=sys.stderr)
        sys.exit(1)
    print(summary_line(result, out_dir), flush=True)
    if cfg.tune.objective == "steps_to_threshold" and result.threshold is None:
        return None
    return objective_score(evals, cfg.tune, result.threshold, cfg.total_timesteps)


def _trial_task(cfg: Config, out_dir: Path) -> float | None:
    """Several seeds, or an Optuna trial: train each seed into ``<out_dir>/seed=<s>``, return the
    aggregate score (a pruned trial: its last reported score)."""
    seeds = list(cfg.tune.seeds) or [cfg.seed]
    what = f"Optuna trial {cfg.tune.trial}" if cfg.tune.trial is not None else "trial"
    print(f"{cfg.algo.name} on {cfg.env}, {what} on seeds {seeds} in {out_dir}", flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _run_errors(out_dir, trial=True), run_lock(out_dir):
        outcome = run_trial(cfg, out_dir, run)
    if outcome.pruned_at is not None:
        state = f"pruned at reported step {outcome.pruned_at}"
    else:
        state = f"{cfg.tune.aggregate} {cfg.tune.objective} {outcome.value:g}"
    scores = ", ".join(f"{s}: {v:g}" for s, v in outcome.scores.items())
    print(f"done: {state}; per seed {{{scores}}}; {out_dir / TRIAL_FILE}", flush=True)
    return outcome.value


@contextmanager
def _run_errors(out_dir: Path, trial: bool = False) -> Iterator[None]:
    """What ends a run (``trial``: a trial's runs) early, each as one line and its exit code."""
    try:
        yield
    except ConfigError as exc:  # the run directory is in use
        _fail(exc)
    except CheckpointError as exc:  # its entries do not fit the config (found on restoring)
        _fail(exc)
    except RunInterrupted as exc:
        how = "the same command continues the trial" if trial else (
            f"the same command (or resume={out_dir}) continues the run")  # fmt: skip
        print(f"interrupted by {exc}; {how}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except NonFiniteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:  # a full disk, a folder made read-only, a file system gone
        print(io_error_line(exc, out_dir), file=sys.stderr)
        sys.exit(1)


def io_error_line(exc: OSError, out_dir: Path) -> str:
    """One line for a run stopped by the file system: the cause, the file, what is kept."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    where = f" ({exc.filename})" if exc.filename else ""
    kept = latest_checkpoint(out_dir) if out_dir.is_dir() else None
    keeps = (
        f"the last checkpoint, {kept.name}, is intact: the same command continues from it once "
        "the cause is fixed"
        if kept is not None
        else "no checkpoint had been written yet"
    )
    return f"error: cannot write the run's files: {reason}{where}; {keeps}"


def summary_line(result: Any, out_dir: Path) -> str:
    """The line a finished run ends with: steps, final return, solved or not, time, where."""
    evals = getattr(result, "evals", None) or []
    parts = [f"done: {getattr(result, 'env_steps', '?')} real steps"]
    if evals:
        parts.append(f"final eval return {evals[-1]['mean_return']:.1f}")
        threshold = getattr(result, "threshold", None)
        if threshold is not None:
            steps = [e["env_steps"] for e in evals]
            means = [e["mean_return"] for e in evals]
            hit = steps_to_threshold(steps, means, threshold, consecutive=3)
            parts.append(
                f"solved (3 evaluations >= {threshold:g}) at {hit} real steps"
                if hit is not None
                else f"not solved (3 evaluations >= {threshold:g})"
            )
    seconds = getattr(result, "train_seconds", None)
    if seconds is not None:
        parts.append(f"{seconds:.0f} s of training")
    parts.append(f"run directory {out_dir}")
    checkpoint = latest_checkpoint(out_dir)
    if checkpoint is not None:
        parts.append(f"checkpoint {checkpoint.name}")
    return "; ".join(parts)


def _fail(exc: ConfigError | CheckpointError) -> typing.NoReturn:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)


def _check_one_mode(argv: list[str]) -> None:
    """Hydra runs, sweeps, prints or completes: one at a time (its own error is a traceback)."""
    modes = {"-m": "-m", "--multirun": "-m", "--cfg": "--cfg", "-c": "--cfg", "--info": "--info",
             "-i": "--info", "--shell-completion": "-sc", "-sc": "-sc"}  # fmt: skip
    given = list(dict.fromkeys(modes[a] for a in argv if a in modes))
    if len(given) > 1:
        raise ConfigError(
            given[0], " ".join(given), "choose one of -m, --cfg, --info, -sc (print a sweep's "
            "first config without -m)",
        )  # fmt: skip


def _resume_in_place(argv: list[str]) -> list[str]:
    """``resume=<dir>`` continues in ``<dir>``: Hydra's own run directory is that one (its job log
    appends there) and it writes no second ``.hydra`` record, so nothing lands under ``outputs/``."""
    if any(a in ("-m", "--multirun") for a in argv):
        return argv
    parsed = OverridesParser.create().parse_overrides([a for a in argv if "=" in a])
    values = {o.key_or_group: o.value() for o in parsed}
    resume = values.get("resume")
    if not isinstance(resume, str) or "hydra.run.dir" in values:
        return argv
    quoted = "'" + resume.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return [*argv, f"hydra.run.dir={quoted}", "hydra.output_subdir=null"]


def main() -> None:
    if any(arg in ("--help", "-h") for arg in sys.argv[1:]):
        print(help_text())  # every key with its docstring; Hydra's own flags: --hydra-help
        return
    try:
        _check_one_mode(sys.argv[1:])
        precheck(sys.argv[1:])
    except ConfigError as exc:
        _fail(exc)
    sys.argv[1:] = _resume_in_place(sys.argv[1:])
    _task()


if __name__ == "__main__":
    main()
