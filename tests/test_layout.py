"""The layout keeps its promises: an algorithm owns everything of its own (nothing outside its
folder names its module or its config node), the entry point stays thin, the package's top level
stays a table of contents, and no function outside the algorithms' own training loops grows long."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from mbrl_ai import algos

PACKAGE = Path(algos.__file__).resolve().parents[1]
ROOT = PACKAGE.parent
ALGOS = PACKAGE / "algos"


def _owner(path: Path) -> str | None:
    """The algorithm whose folder or module ``path`` is in (None outside ``algos/<name>``)."""
    if ALGOS not in path.parents:
        return None
    rel = path.relative_to(ALGOS).parts
    return rel[0].removesuffix(".py") if rel[0] != "__init__.py" else None


def _allowed(owner: str | None) -> set[str]:
    """What a file of ``owner`` may name: its own algorithm, and any algorithm whose config node
    its spec declares it reads (MBPO learns with SAC's node)."""
    if owner is None or owner not in algos.names():
        return set()
    keys = {node.key for node in algos.get(owner).nodes}
    return {owner} | {n for n in algos.names() if {x.key for x in algos.get(n).nodes} & keys}


def _node_patterns(name: str) -> list[re.Pattern[str]]:
    """How a file names an algorithm's config node: its class, ``<x>.<key>.<field>`` attribute
    access, or a ``"<key>.<field>"`` key string."""
    out = []
    for node in algos.get(name).nodes:
        key = re.escape(node.key)
        out.append(re.compile(rf"\b{node.__name__}\b"))
        out.append(re.compile(rf"\b(cfg|config|c|self\.cfg)\.{key}\b"))
        out.append(re.compile(rf"[\"']{key}\.[a-z_]+"))
    return out


def _imported_algorithms(tree: ast.AST) -> set[str]:
    """The built-in algorithms whose modules a file imports."""
    found = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module:
            parts = n.module.split(".")
            if parts[:2] == ["mbrl_ai", "algos"]:
                if len(parts) > 2:
                    found.add(parts[2])
                else:
                    found |= {a.name for a in n.names}
        elif isinstance(n, ast.Import):
            for a in n.names:
                parts = a.name.split(".")
                if parts[:2] == ["mbrl_ai", "algos"] and len(parts) > 2:
                    found.add(parts[2])
    return found & set(algos.names())


def test_nothing_outside_an_algorithm_names_its_module_or_node() -> None:
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        owner = _owner(path)
        allowed = _allowed(owner)
        text = path.read_text()
        for name in sorted(_imported_algorithms(ast.parse(text)) - allowed):
            offences.append(f"{path.relative_to(ROOT)} imports algorithm {name}")
        for name in algos.names():
            if name in allowed:
                continue
            for pattern in _node_patterns(name):
                for m in pattern.finditer(text):
                    line = text[: m.start()].count("\n") + 1
                    offences.append(f"{path.relative_to(ROOT)}:{line} names {name}: {m.group()}")
    config_yaml = (ROOT / "conf" / "config.yaml").read_text()
    for name in algos.names():
        for node in algos.get(name).nodes:
            if re.search(rf"^{re.escape(node.key)}:", config_yaml, re.M):
                offences.append(f"conf/config.yaml sets the {node.key} node")
    assert not offences, "\n".join(offences)


def test_the_check_sees_a_planted_offence(tmp_path: Path) -> None:
    """The check above can fail: a module outside the algorithms that reads a node is found."""
    name = next(n for n in algos.names() if algos.get(n).nodes)
    key = algos.get(name).nodes[0].key
    text = f"def f(cfg):\n    return cfg.{key}.anything\n"
    assert any(p.search(text) for p in _node_patterns(name))
    tree = ast.parse(f"from mbrl_ai.algos.{name} import something\n")
    assert _imported_algorithms(tree) == {name}


def test_the_entry_point_the_config_and_the_top_level_stay_small() -> None:
    assert len((PACKAGE / "train.py").read_text().splitlines()) <= 200
    assert len((PACKAGE / "config.py").read_text().splitlines()) <= 500
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 18, top


def _long_functions(limit: int) -> list[str]:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for n in ast.walk(ast.parse(path.read_text())):
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef):
                length = n.end_lineno - n.lineno + 1  # type: ignore[operator]
                if length > limit:
                    long.append(f"{path.relative_to(ROOT)}:{n.lineno} {n.name} ({length} lines)")
    return long


# the algorithms' own training loops: each reads top to bottom as its algorithm's pseudocode
TRAINING_LOOPS = {"train_mbppo": 110, "train_dyna_dqn": 100, "train_mbpo": 100}


@pytest.mark.parametrize("limit", [80])
def test_no_function_outside_the_training_loops_is_long(limit: int) -> None:
    too_long = []
    for entry in _long_functions(limit):
        name, length = entry.split()[1], int(entry.split("(")[-1].split()[0])
        if length > TRAINING_LOOPS.get(name, limit):
            too_long.append(entry)
    assert not too_long, "\n".join(too_long)
