"""Ranges declared on config fields, and the one walker that checks them.

A field says what values it takes where it is declared::

    n_epochs: Annotated[int, Ge(1)] = 10
    gamma: Annotated[float, In(0.0, 1.0)] = 0.99
    target_kl: Annotated[float | None, Gt(0.0)] = None      # None is allowed: the type says so
    planner: Annotated[str, OneOf(PLANNERS)] = "cem"         # a tuple, or a live registry
    hidden: Annotated[list[int], Each(Ge(1))] = ...

:func:`check_declared` walks a node's fields and raises one :class:`ConfigError` line for the
first value out of its range: ``invalid config: ppo.n_epochs=0: must be an integer >= 1``. A
node's own ``check`` then holds only the rules that tie two fields together. ``--help`` prints the
same declarations (:func:`describe`).
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from mbrl_ai.core.errors import ConfigError


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


class Rule:
    """A declared range: ``ok(value)`` and the text after ``must be`` / ``allowed:``."""

    def ok(self, value: Any) -> bool:
        raise NotImplementedError

    def text(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Ge(Rule):
    """``>= low``; an integer bound reads "an integer >= low"."""

    low: float

    def ok(self, value: Any) -> bool:
        return value >= self.low

    def text(self) -> str:
        kind = "an integer " if isinstance(self.low, int) else ""
        return f"must be {kind}>= {_num(self.low)}"


@dataclass(frozen=True)
class Gt(Rule):
    """``> low``."""

    low: float

    def ok(self, value: Any) -> bool:
        return value > self.low

    def text(self) -> str:
        return f"must be > {_num(self.low)}"


@dataclass(frozen=True)
class In(Rule):
    """Inside an interval; ``ends`` says which ends are closed (``"[]"``, ``"[)"``, ``"(]"``, ``"()"``)."""

    low: float
    high: float
    ends: str = "[]"

    def ok(self, value: Any) -> bool:
        above = value >= self.low if self.ends[0] == "[" else value > self.low
        below = value <= self.high if self.ends[1] == "]" else value < self.high
        return above and below

    def text(self) -> str:
        return f"must be in {self.ends[0]}{_num(self.low)}, {_num(self.high)}{self.ends[1]}"


@dataclass(frozen=True)
class OneOf(Rule):
    """One of a set of names: a tuple, or a registry (a dict filled as modules register)."""

    choices: Collection[str]

    def ok(self, value: Any) -> bool:
        return value in self.choices

    def text(self) -> str:
        return f"allowed: {', '.join(self.choices)}"


@dataclass(frozen=True)
class Matches(Rule):
    """A string the regular expression ``pattern`` matches whole; ``allowed`` says it in words."""

    pattern: str
    allowed: str

    def ok(self, value: Any) -> bool:
        return re.fullmatch(self.pattern, value) is not None

    def text(self) -> str:
        return f"allowed: {self.allowed}"


@dataclass(frozen=True)
class Each(Rule):
    """Every element of a list obeys ``rule`` (e.g. layer widths)."""

    rule: Rule
    what: str = "layer widths"

    def ok(self, value: Any) -> bool:
        return all(self.rule.ok(v) for v in value)

    def text(self) -> str:
        return f"{self.what} " + self.rule.text().replace("must be", "must each be", 1)


def declared(cls: type) -> dict[str, tuple[Rule, bool]]:
    """Field name → (its rule, whether ``None`` is allowed) for every field of ``cls`` that
    declares one."""
    hints = typing.get_type_hints(cls, include_extras=True)
    rules: dict[str, tuple[Rule, bool]] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if typing.get_origin(hint) is not typing.Annotated:
            continue
        base, *extras = typing.get_args(hint)
        for rule in extras:
            if isinstance(rule, Rule):
                rules[f.name] = (rule, type(None) in typing.get_args(base))
    return rules


def check_declared(node: Any, prefix: str = "") -> None:
    """Raise :class:`ConfigError` for the first field of ``node`` outside its declared range
    (``prefix``: the node's dotted path, e.g. ``"ppo."``)."""
    for name, (rule, nullable) in declared(type(node)).items():
        value = getattr(node, name)
        if value is None and nullable:
            continue
        if value is None or not rule.ok(value):
            text = rule.text() + (" or null" if nullable else "")
            raise ConfigError(f"{prefix}{name}", value, text)


def describe(cls: type, name: str) -> str | None:
    """The declared range of field ``name`` of ``cls`` as ``--help`` prints it, or None."""
    found = declared(cls).get(name)
    if found is None:
        return None
    rule, nullable = found
    return rule.text() + (" or null" if nullable else "")


def written_type(annotation: str) -> str:
    """A field's annotation as written, without its declaration: ``"Annotated[int, Ge(1)]"`` →
    ``"int"`` (for error lines and ``--help``)."""
    if not annotation.startswith("Annotated["):
        return annotation
    depth = 0
    for i, ch in enumerate(annotation[len("Annotated[") :], start=len("Annotated[")):
        depth += ch in "[("
        depth -= ch in "])"
        if ch == "," and depth == 0:
            return annotation[len("Annotated[") : i].strip()
    return annotation


def need(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise :class:`ConfigError` for ``key=value`` unless ``ok``."""
    if not ok:
        raise ConfigError(key, value, allowed)


def need_multiple_of_envs(key: str, value: int, n_envs: int) -> None:
    """``key`` counts real steps that every training env takes equally often."""
    need(value % n_envs == 0, key, value, f"must be a multiple of n_envs ({n_envs})")


def need_learning_starts(key: str, value: int, c: Any) -> None:
    """``key`` is a number of real steps of random actions before the first update: at most the
    run's budget (``c.total_timesteps``; equal: a run that only collects random data)."""
    need(value <= c.total_timesteps, key, value,
         f"must be <= total_timesteps ({c.total_timesteps})")  # fmt: skip
