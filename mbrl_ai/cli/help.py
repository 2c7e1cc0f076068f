"""The text of ``python -m mbrl_ai.train --help``: usage, the config groups and every config key.

Every key of the schema is listed, root keys first, then each nested node (``world_model.*``,
the algorithm-owned ``sac.*`` and ``mbpo.*`` of :func:`mbrl_ai.algos.config_schema` ...), with
its type, its default and the attribute docstring that follows it in the class body. Python keeps
no such docstrings at run time: they are read from the source with ``ast``, through the class's
MRO (the schema itself is a generated subclass of :class:`~mbrl_ai.config.Config`).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import textwrap
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from mbrl_ai import algos
from mbrl_ai.config import ConfigError
from mbrl_ai.core.ranges import describe, written_type

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
WIDTH = 100
KEY_INDENT = "  "
DOC_INDENT = "      "

USAGE = """\
usage: python -m mbrl_ai.train [group=option ...] [key=value ...]
       python -m mbrl_ai.train -m [group=a,b ...] [key=a,b ...]    (a sweep: every combination)

  python -m mbrl_ai.train env=CartPole-v1 planning_horizon=5
  python -m mbrl_ai.train experiment=ppo_cartpole seed=3
  python -m mbrl_ai.train -m seed=0,1,2 lr_actor_critic=3e-4,1e-3
  python -m mbrl_ai.train -m tune=ppo_cartpole    (an Optuna tuning sweep; see tune.* below)
  python -m mbrl_ai.train resume=outputs/mbppo/CartPole-v1/<run> total_timesteps=200000
  python -m mbrl_ai.train env=FrozenLake-v1 +env_kwargs.is_slippery=false

Hydra's own flags (--cfg job, --info, hydra.* keys): python -m mbrl_ai.train --hydra-help"""


def help_text() -> str:
    """Usage, the config groups with their options, and every key with type, default and doc."""
    note = ""
    try:
        algos.load_plugins()
    except ConfigError as exc:  # the built-in algorithms are still listed
        note = f"\n(plugin algorithms not loaded: {exc})"
    return "\n\n".join([USAGE, groups_text(), keys_text(algos.config_schema())]) + note


def groups_text() -> str:
    """``group: option, ...`` for each directory of ``conf/`` (and options stored in Hydra's
    config store, e.g. a plugin algorithm's ``algo_yaml``), the default option marked."""
    defaults = _default_options()
    lines = ["config groups (group=option; an experiment sets several keys and groups at once):"]
    # conf/hydra/ holds Hydra's own groups (hydra/sweeper=optuna): --hydra-help lists those
    for group in sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra"):
        options = {p.stem for p in (CONF_DIR / group).glob("*.yaml")} | _stored_options(group)
        shown = [f"{o} (default)" if o == defaults.get(group) else o for o in sorted(options)]
        lines.append(_wrap(", ".join(shown), f"{KEY_INDENT}{group}: ", DOC_INDENT))
    return "\n".join(lines)


def keys_text(schema: type) -> str:
    """Every key of the dataclass ``schema`` and of its nested nodes, one paragraph each."""
    header = "config keys (key=value; the defaults are the schema's, before any group option):"
    return "\n".join([header, *_node_lines(schema, "")])


def _node_lines(cls: type, prefix: str) -> list[str]:
    """The keys of ``cls`` (named ``prefix`` + name), then each nested node under a heading."""
    docs = attribute_docs(cls)
    lines, nodes = [], []
    for f in dataclasses.fields(cls):
        default = _default(f)
        if dataclasses.is_dataclass(default):
            nodes.append((f.name, type(default)))
            continue
        lines.append(f"{KEY_INDENT}{prefix}{f.name}: {_type_name(f.type)} = {_show(default)}")
        text = " ".join(filter(None, [docs.get(f.name), _range_text(cls, f.name)]))
        if text:
            lines.append(_wrap(text, DOC_INDENT, DOC_INDENT))
    for name, node in nodes:
        lines += ["", f"{prefix}{name} ({node.__name__}):"]
        if doc := class_doc(node):
            lines.append(_wrap(doc, KEY_INDENT, KEY_INDENT))
        lines += _node_lines(node, f"{prefix}{name}.")
    return lines


def attribute_docs(cls: type) -> dict[str, str]:
    """``{field: docstring}`` of ``cls`` and its bases (a subclass's own docstring wins)."""
    docs: dict[str, str] = {}
    for klass in cls.__mro__:
        for name, doc in _parse_class(klass)[1].items():
            docs.setdefault(name, doc)
    return docs


def class_doc(cls: type) -> str:
    """The docstring written in the body of ``cls``; '' when there is none (a dataclass without
    one gets its signature as ``__doc__``, which is not shown)."""
    return _parse_class(cls)[0]


@functools.cache
def _parse_class(cls: type) -> tuple[str, dict[str, str]]:
    """(class docstring, ``{field: attribute docstring}``) from the source of ``cls``, whitespace
    collapsed; empty for a class without source (``object``, a generated dataclass)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return "", {}
    node = tree.body[0]
    if not isinstance(node, ast.ClassDef):
        return "", {}
    docs = {}
    for stmt, after in itertools.pairwise(node.body):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[stmt.target.id] = " ".join(after.value.value.split())
    return " ".join((ast.get_docstring(node) or "").split()), docs


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _type_name(annotation: Any) -> str:
    """The annotation as written (a string under ``from __future__ import annotations``), without
    its declared range."""
    if isinstance(annotation, str):
        return written_type(annotation)
    return getattr(annotation, "__name__", repr(annotation))


def _range_text(cls: type, name: str) -> str | None:
    """The declared range of a field, as a sentence of its help (``[must be >= 1]``)."""
    text = describe(cls, name)
    return f"[{text}]" if text is not None else None


def _show(value: Any) -> str:
    """A default as it is written on the command line."""
    if value is dataclasses.MISSING:
        return "(required)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value or "''"
    return str(value)


def _wrap(text: str, first: str, rest: str) -> str:
    return textwrap.fill(text, WIDTH, initial_indent=first, subsequent_indent=rest)


def _default_options() -> dict[str, str]:
    """``{group: option}`` of the ``defaults`` list of ``conf/config.yaml`` (``null`` left out)."""
    conf = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "config.yaml"))
    defaults = conf.get("defaults", []) if isinstance(conf, dict) else []
    return {
        group: option
        for entry in defaults
        if isinstance(entry, dict)
        for group, option in entry.items()
        if isinstance(option, str)
    }


def _stored_options(group: str) -> set[str]:
    """Options of ``group`` in Hydra's config store (an algorithm's ``algo_yaml``)."""
    store = ConfigStore.instance()
    if group not in store.repo:
        return set()
    return {Path(name).stem for name in store.list(group)}
