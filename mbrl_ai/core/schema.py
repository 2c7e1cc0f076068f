"""Dataclass schemas for composed configs: which keys and nodes a schema has, what type a dotted
key is declared with, refusing keys the schema lacks (with a "did you mean"), and refusing
non-finite numbers. Nothing here knows the project's keys (``mbrl_ai.config`` does)."""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

from mbrl_ai.core.errors import ConfigError
from mbrl_ai.core.ranges import check_declared, written_type

T = TypeVar("T")


def unknown_key(full_key: str, value: Any, known: list[str]) -> ConfigError:
    """The error for a key the schema lacks, with the closest known key as a hint."""
    parent, _, leaf = full_key.rpartition(".")
    close = difflib.get_close_matches(leaf, known, n=1)
    hint = f"did you mean '{parent + '.' if parent else ''}{close[0]}'? " if close else ""
    where = f" under {parent}" if parent else ""
    return ConfigError(full_key, value, f"unknown key; {hint}known keys{where}: {', '.join(known)}")


def nested_nodes(schema: type) -> dict[str, type]:
    """Field name → dataclass of every nested node of ``schema``."""
    hints = typing.get_type_hints(schema)
    return {f.name: hints[f.name] for f in dataclasses.fields(schema) if _is_node(hints[f.name])}


def _is_node(t: Any) -> bool:
    return isinstance(t, type) and dataclasses.is_dataclass(t)


def schema_node(path: str, schema: type) -> type | None:
    """The dataclass at a dotted path of ``schema`` (``""`` is the schema itself), or None."""
    node: type = schema
    for part in filter(None, path.split(".")):
        sub = nested_nodes(node).get(part)
        if sub is None:
            return None
        node = sub
    return node


def schema_type(path: str, schema: type) -> str | None:
    """The annotation (as written, e.g. ``"float | None"``) of a dotted key, or None if unknown."""
    parent, _, leaf = path.rpartition(".")
    node = schema_node(parent, schema)
    if node is None:
        return None
    return {f.name: written_type(str(f.type)) for f in dataclasses.fields(node)}.get(leaf)


def check_keys(node: DictConfig, schema: type, prefix: str = "") -> None:
    """Refuse keys the schema does not know (``+typo=1`` is accepted silently by Hydra)."""
    fields = [f.name for f in dataclasses.fields(schema)]
    nodes = nested_nodes(schema)
    for key in node:
        full = f"{prefix}{key!s}"
        if key == "hydra" and not prefix:
            continue
        if key not in fields:
            raise unknown_key(full, OmegaConf.select(node, str(key)), fields)
        sub = nodes.get(str(key))
        if sub is not None:
            value = node[key]
            if not isinstance(value, DictConfig):
                raise ConfigError(full, value, f"must be a mapping of {sub.__name__} fields")
            check_keys(value, sub, prefix=f"{full}.")


def check_finite(node: Any, prefix: str) -> None:
    """No config value is inf or NaN: none of them has a meaning there."""
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            check_finite(value, f"{key}.")
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(key, value, "must be a finite number")


def to_dataclass(cfg: DictConfig, schema: type[T]) -> T:
    """A composed DictConfig as an instance of the dataclass ``schema``: unknown keys refused
    (:func:`check_keys`), wrong types refused in one line (OmegaConf's own check)."""
    check_keys(cfg, schema)
    plain = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(plain, dict)
    plain.pop("hydra", None)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), plain)
    except Exception as exc:  # omegaconf's ValidationError carries full_key / value
        key = getattr(exc, "full_key", None) or "?"
        msg = str(exc).splitlines()[0]
        raise ConfigError(key, OmegaConf.select(OmegaConf.create(plain), key), msg) from None
    config = OmegaConf.to_object(merged)
    assert isinstance(config, schema)
    return config


def check_tree(root: Any, reads: Callable[[str], bool]) -> None:
    """Every number finite; then the root's declared ranges and its ``check()``; then, for each
    nested node that ``reads(name)``, its declared ranges and its ``check(root)``."""
    check_finite(root, "")
    check_declared(root)
    root.check()
    for name in nested_nodes(type(root)):
        node = getattr(root, name)
        if not reads(name):
            continue
        check_declared(node, f"{name}.")
        if hasattr(node, "check"):
            node.check(root)
