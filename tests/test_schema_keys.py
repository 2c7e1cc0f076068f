"""Every key of the config schema that declares a range, wherever it comes from (the root, a
nested node, a node an algorithm registers), refuses on the command line a value of the wrong type and a value out of
its range with one line naming the key. The cases are generated from the schema, so an algorithm
added to the registry is covered with no edit here."""

from __future__ import annotations

from typing import Any

import pytest

from mbrl_ai import algos
from mbrl_ai.cli.precheck import precheck
from mbrl_ai.config import ConfigError
from mbrl_ai.core.ranges import OneOf, Rule
from tests.schema import out_of_range, owner, ranged_keys

KEYS = [(k.key, k.rule, k.kind) for k in ranged_keys()]


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
    algo = owner(key.split(".")[0]) if "." in key else []
    wrong_type = "[1,2]" if isinstance(rule, OneOf) else "abc"
    for bad in (wrong_type, out_of_range(rule)):
        with pytest.raises(ConfigError) as info:  # the command line's own check
            precheck([*algo, f"{key}={bad}"])
        assert info.value.key == key, (bad, str(info.value))
        assert "\n" not in str(info.value)
