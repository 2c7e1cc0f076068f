"""Every key of the config schema that declares a range, wherever it comes from (the root, a
nested node, a node an algorithm registers), refuses on the command line a value of the wrong type and a value out of
its range with one line naming the key. The cases are generated from the schema, so an algorithm
added to the registry is covered with no edit here."""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

import pytest

from mbrl_ai import algos
from mbrl_ai.cli.precheck import precheck
from mbrl_ai.config import ConfigError
from mbrl_ai.core.ranges import Ge, Gt, In, OneOf, Rule

algos.load_plugins()


def _owner(node_key: str) -> list[str]:
    """``algo=<name>`` for a node an algorithm registers (the first that owns it), else nothing."""
    for name in algos.names():
        if any(n.key == node_key for n in algos.get(name).nodes):
            return [f"algo={name}"]
    return []


def _ranged_keys() -> list[tuple[str, Rule, Any]]:
    """(dotted key, its first range rule, its declared type) for every ranged key of the schema."""
    out: list[tuple[str, Rule, Any]] = []

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
                out.append((f"{prefix}{f.name}", rules[0], inner))

    walk(algos.config_schema(), "")
    return out


def _out_of_range(rule: Rule) -> str:
    if isinstance(rule, OneOf):
        return "no_such_choice"
    if isinstance(rule, In):
        return repr(rule.high + 1.0) if math.isfinite(rule.high) else repr(rule.low - 1.0)
    low = rule.low  # Ge / Gt
    below = low - 1 if isinstance(rule, Ge) else low
    return str(below) if isinstance(low, int) else repr(float(below))


KEYS = _ranged_keys()


def test_the_schema_has_ranged_keys_of_every_registered_algorithm() -> None:
    nodes = {key.split(".")[0] for key, _, _ in KEYS}
    registered = {n.key for name in algos.names() for n in algos.get(name).nodes}
    assert registered <= nodes, registered - nodes
    assert len(KEYS) > 100


@pytest.mark.integration  # ~200 command-line checks: about two minutes on two cores
@pytest.mark.parametrize(("key", "rule", "kind"), KEYS, ids=[k for k, _, _ in KEYS])
def test_a_ranged_key_refuses_a_wrong_type_and_an_out_of_range_value(
    key: str, rule: Rule, kind: Any
) -> None:
    algo = _owner(key.split(".")[0]) if "." in key else []
    wrong_type = "[1,2]" if isinstance(rule, OneOf) else "abc"
    for bad in (wrong_type, _out_of_range(rule)):
        with pytest.raises(ConfigError) as info:  # the command line's own check
            precheck([*algo, f"{key}={bad}"])
        assert info.value.key == key, (bad, str(info.value))
        assert "\n" not in str(info.value)
