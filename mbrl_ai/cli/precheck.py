"""The pre-check of ``python -m mbrl_ai.train``: every configuration the command line asks for
(every value of a sweep, the ends of an interval, an Optuna search space) is composed and checked
before Hydra starts, so bad input costs one line on stderr and exit code 2, never a traceback or
a half-written run directory.

:func:`precheck` reads in four steps: parse the overrides; check the paths the run will write
(output directory, launcher plugin, ``resume=`` directory, a directory in use); check each
override's key against the schema and the groups; compose and validate each candidate config.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep
from omegaconf import OmegaConf

from mbrl_ai import algos
from mbrl_ai.algos import check_spaces, config_schema, to_config
from mbrl_ai.cli.compose import CONF_DIR, compose_dict, prepare
from mbrl_ai.config import RESUME_MAY_CHANGE, Config, ConfigError, reads_key
from mbrl_ai.core.checkpoint import CheckpointError, latest_checkpoint, read_checkpoint
from mbrl_ai.core.schema import schema_node, schema_type, unknown_key
from mbrl_ai.core.utils import device_unavailable, unwritable
from mbrl_ai.envs import inspect_env, make_env, refuse_untrusted_module
from mbrl_ai.envs.change import check_change
from mbrl_ai.runtime.rundir import LOCK_FILE, run_lock
from mbrl_ai.tune.sweeper import LOCK_FILE as SWEEP_LOCK_FILE
from mbrl_ai.tune.sweeper import check_interval, check_settings, sweep_lock

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


# Flags that print the composed config (with their arguments): what they print is checked first.
_PRINT_FLAGS = {
    "--cfg": ("job", "hydra", "all"),
    "-c": ("job", "hydra", "all"),
    "--info": ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath"),
    "-i": ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath"),
    "--package": None,  # any package name
    "-p": None,
}


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
    multirun = any(arg in ("-m", "--multirun") for arg in argv)
    resume, saved_env = _check_paths(parsed, multirun)
    optuna_params = _optuna_params(parsed) if multirun else None
    if optuna_params is not None:
        parsed = [*parsed, *optuna_params]
    base, sweeps = _checked_overrides(parsed, resume, saved_env)
    _check_candidates(base, sweeps, trials=optuna_params is not None)


def _check_paths(parsed: list[Any], multirun: bool) -> tuple[Any, str | None]:
    """The launcher plugin exists, the output directory is writable and not in use, a ``resume=``
    directory holds a readable checkpoint; returns the ``resume`` value and its saved env id."""
    out_key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    hydra_values = {o.key_or_group: o.value() for o in parsed if o.key_or_group.startswith("hydra")}
    _check_launcher(hydra_values.get("hydra/launcher"))
    _check_ray_init(hydra_values)
    _check_writable(out_key, str(hydra_values.get(out_key, ".")))
    resume = next((o.value() for o in parsed if o.key_or_group == "resume"), None)
    saved_env = None
    if resume is not None:
        saved_env, done = _check_resume_dir(str(resume))
        total = next((o for o in parsed if o.key_or_group == "total_timesteps"), None)
        value = total.value() if total is not None else None
        if isinstance(value, int) and not isinstance(value, bool) and value < done:
            raise ConfigError(
                "total_timesteps", value, f"must be >= the {done:,} real steps the run in "
                f"{resume} has done (it resumes from there)",
            )  # fmt: skip
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
    elif (named := hydra_values.get(out_key)) is not None and (
        Path(str(named)) / SWEEP_LOCK_FILE
    ).is_file():  # a sweep directory an Optuna sweeper is working in
        with sweep_lock(Path(str(named)).absolute()):
            pass
    return resume, saved_env


def _checked_overrides(
    parsed: list[Any], resume: Any, saved_env: str | None
) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Check each override's key (and a group's option); returns the first candidate's overrides
    and the sweeps, as (prefix ``key=`` with its +/~ markers, values to check)."""
    groups = _groups()
    base: list[str] = []
    sweeps: list[tuple[str, list[str]]] = []
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
    return base, sweeps


def _check_candidates(
    base: list[str], sweeps: list[tuple[str, list[str]]], trials: bool = False
) -> None:
    """Compose and validate the first candidate and, for each sweep, one candidate per other
    value; the env and algorithm of each distinct pair are checked once (:func:`check_run`)."""
    candidates = [base]
    for prefix, values in sweeps:
        for v in values[1:]:
            candidates.append([prefix + v if o.startswith(prefix) else o for o in base])
    checked: set[tuple[str, str, tuple[str, ...]]] = set()
    for ovr in candidates:
        try:
            composed = compose_dict(ovr)
        except ConfigError:
            raise
        except Exception as exc:
            raise _composition_error(exc, ovr) from None
        cfg = to_config(composed)
        _check_explicit_curiosity(ovr, cfg)
        _check_unread(ovr, cfg)
        key = (cfg.env, cfg.algo.name, tuple(sorted(cfg.env_change.set)))
        if key not in checked:
            check_run(cfg, trial=trials)
            checked.add(key)


def check_run(cfg: Config, trial: bool = False) -> None:
    """Checks that need the machine or the environment: the device exists here, the id exists and
    the algorithm handles its spaces; a trial scored by steps to threshold has a threshold."""
    check_device(cfg.device)
    info = inspect_env(cfg.env, cfg.env_kwargs)
    check_spaces(info, cfg.algo.name, cfg)
    if cfg.env_change.set:
        env = make_env(cfg.env, cfg.env_kwargs)
        try:
            check_change(cfg.env_change, env, cfg.env)
        finally:
            env.close()
    threshold = cfg.eval_threshold if cfg.eval_threshold is not None else info.reward_threshold
    if (
        (trial or is_trial(cfg))
        and cfg.tune.objective == "steps_to_threshold"
        and threshold is None
    ):
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


# nodes whose keys are the environment's (its constructor's arguments, its attributes)
OPEN_NODES = ("env_kwargs", "env_change.set")
OPEN_PREFIXES = tuple(f"{node}." for node in OPEN_NODES)


def _check_override_key(key: str, value: Any, groups: dict[str, list[str]]) -> None:
    """Refuse an override of a key the schema does not have, or of a group that is not there."""
    if key.startswith("hydra") or key in OPEN_NODES or key.startswith(OPEN_PREFIXES):
        return  # keys of the environment's: it checks them itself (check_run)
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
    if key.startswith(OPEN_PREFIXES) and "not in struct" in message:
        return ConfigError(key, value, f"a new key needs a '+': +{key}={value}")
    expected = schema_type(key, config_schema()) if key else None
    lowered = message.lower()
    if expected is not None and ("could not be converted" in lowered or "is not a" in lowered):
        message = f"expected {expected}"
    return ConfigError(key or "override", value, message)


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


def _sweep_values(o: Any) -> list[str]:
    """The values of a sweep override to check: all of a list, the ends of an interval."""
    value = o.value()
    if isinstance(value, IntervalSweep):  # for optimising sweepers: sampled, not enumerated
        assert value.start is not None and value.end is not None
        text = (o.input_line or "").partition("=")[2]
        check_interval(o.key_or_group, text, value.start, value.end, "log" in value.tags)
        ends = [value.start, value.end]
        return [str(int(v)) if "int" in value.tags else repr(float(v)) for v in ends]
    return list(o.sweep_string_iterator())


def _optuna_params(parsed: list[Any]) -> list[Any] | None:
    """With the Optuna sweeper (``hydra/sweeper=optuna``, as such or from a preset): its
    ``hydra.sweeper.params`` as parsed overrides, so that they are checked like the command
    line's, after its own settings; ConfigError without Optuna installed. None: another
    sweeper."""
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            composed = compose(config_name="config", overrides=fixed, return_hydra_config=True)
    except Exception:  # the checks that follow name the problem
        return None
    target = str(OmegaConf.select(composed, "hydra.sweeper._target_", default=""))
    if not target.endswith("mbrl_ai_sweeper.OptunaSweeper"):
        return None
    if importlib.util.find_spec("optuna") is None:
        raise ConfigError("hydra/sweeper", "optuna", "needs optuna: pip install 'mbrl_ai[tune]'")
    settings = OmegaConf.to_container(OmegaConf.select(composed, "hydra.sweeper"), resolve=True)
    assert isinstance(settings, dict)
    check_settings(**{str(k): v for k, v in settings.items()})
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
    problem = unwritable(path.split("${")[0] or ".")
    if problem is not None:
        raise ConfigError(key, path, problem)


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


# Ray's resource counts in ``hydra.launcher.ray.init``: Ray refuses a negative one only inside
# the launcher, with a traceback of some forty lines
_RAY_COUNTS = ("num_cpus", "num_gpus", "object_store_memory")


def _check_ray_init(hydra_values: dict[str, Any]) -> None:
    """``hydra.launcher.ray.init.<count>`` is a number >= 0."""
    for key, value in hydra_values.items():
        key = key.lstrip("+~")
        if key.startswith("hydra.launcher.ray.init.") and key.rsplit(".", 1)[1] in _RAY_COUNTS:
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (number and value >= 0):
                raise ConfigError(key, value, "must be a number >= 0")


def _check_resume_dir(path: str) -> tuple[str, int]:
    """``resume=<dir>``: the directory exists, is writable and holds a readable checkpoint;
    returns the env id it was trained on and the real steps it has done."""
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
    return env, int(state.get("env_steps", 0))


def check_one_mode(argv: list[str]) -> None:
    """Hydra runs, sweeps, prints or completes: one at a time (its own error is a traceback)."""
    modes = {"-m": "-m", "--multirun": "-m", "--cfg": "--cfg", "-c": "--cfg", "--info": "--info",
             "-i": "--info", "--shell-completion": "-sc", "-sc": "-sc"}  # fmt: skip
    given = list(dict.fromkeys(modes[a] for a in argv if a in modes))
    if len(given) > 1:
        raise ConfigError(
            given[0], " ".join(given), "choose one of -m, --cfg, --info, -sc (print a sweep's "
            "first config without -m)",
        )  # fmt: skip


def resume_in_place(argv: list[str]) -> list[str]:
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
