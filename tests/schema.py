"""The config schema's ranged keys, walked from the schema the registry builds (root keys, nested
nodes, the nodes algorithms register), for the tests that generate cases from it."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

from mbrl_ai import algos
from mbrl_ai.core.ranges import Ge, Gt, In, OneOf, Rule

algos.load_plugins()


@dataclass(frozen=True)
class RangedKey:
    key: str  # dotted
    rule: Rule  # its first range rule
    kind: Any  # its declared type
    default: Any


def owner(node_key: str) -> list[str]:
    """``algo=<name>`` for a node an algorithm registers (the first that owns it), else nothing."""
    for name in algos.names():
        if any(n.key == node_key for n in algos.get(name).nodes):
            return [f"algo={name}"]
    return []


def ranged_keys() -> list[RangedKey]:
    """Every key of the schema that declares a range."""
    out: list[RangedKey] = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls, include_extras=True)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            inner = (
                typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
            )
            if dataclasses.is_dataclass(inner):
                walk(inner, f"{prefix}{f.name}.")
                continue
            rules = [
                m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Ge | Gt | In | OneOf)
            ]
            if rules:
                default = (
                    f.default
                    if f.default is not dataclasses.MISSING
                    else f.default_factory()  # type: ignore[misc]
                    if f.default_factory is not dataclasses.MISSING
                    else None
                )
                out.append(RangedKey(f"{prefix}{f.name}", rules[0], inner, default))

    walk(algos.config_schema(), "")
    return out


def out_of_range(rule: Rule) -> str:
    """A command-line value just outside ``rule``."""
    if isinstance(rule, OneOf):
        return "no_such_choice"
    if isinstance(rule, In):
        return repr(rule.high + 1.0) if math.isfinite(rule.high) else repr(rule.low - 1.0)
    low = rule.low  # Ge / Gt
    below = low - 1 if isinstance(rule, Ge) else low
    return str(below) if isinstance(low, int) else repr(float(below))


def at_the_edges(k: RangedKey) -> list[str]:
    """Command-line values inside ``k``'s range: its ends where they are closed and finite, and a
    point just inside an open end (the values a range check most often gets wrong)."""
    rule, integer = k.rule, k.kind is int or isinstance(k.default, bool | int)
    if isinstance(rule, OneOf):
        return sorted(str(c) for c in rule.choices)

    def fmt(x: float) -> str:
        return str(int(x)) if integer else repr(float(x))

    if isinstance(rule, In):
        inside = [(rule.low + rule.high) / 2] if math.isfinite(rule.high - rule.low) else []
        if rule.ends[0] == "[" and math.isfinite(rule.low):
            inside.append(rule.low)
        if rule.ends[1] == "]" and math.isfinite(rule.high):
            inside.append(rule.high)
        values = [fmt(x) for x in inside if not integer or float(x).is_integer()]
        return values or [fmt(math.ceil(rule.low) + 1 if integer else rule.low + 0.5)]
    low = rule.low
    first = low if isinstance(rule, Ge) else (low + 1 if integer else low + 0.5)
    return [fmt(first)]
