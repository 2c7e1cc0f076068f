"""A property-based test of the command line's promise: any combination of overrides drawn from
the config schema (an algorithm from the registry; one to three of the keys it reads, each set
inside its range at an edge, just outside it, or to a value of the wrong type) either trains for
a tiny budget or is refused with one line (``ConfigError``, exit 2) before any work; a run may
also stop with one line on a non-finite loss (exit 1, as documented). Never a traceback.

Hypothesis runs a fixed set of examples (``derandomize``), so CI sees the same cases every time;
``MBRL_AI_HYPOTHESIS_EXAMPLES`` asks for more (e.g. 500 for a long search), and pytest's
``--hypothesis-show-statistics`` counts how the cases ended."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mbrl_ai import algos
from mbrl_ai.cli.precheck import precheck
from mbrl_ai.config import ConfigError, reads_key
from mbrl_ai.core.errors import EndRun, NonFiniteError
from mbrl_ai.runtime import watch_iterations
from mbrl_ai.train import run
from tests.conftest import compose
from tests.schema import RangedKey, at_the_edges, out_of_range, ranged_keys

KEYS = ranged_keys()
NAMES = algos.names()
EXAMPLES = int(os.environ.get("MBRL_AI_HYPOTHESIS_EXAMPLES", "40"))
SECONDS = 3.0  # a run that was accepted trains this long (to the end of an iteration), then ends


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    name = draw(st.sampled_from(NAMES))
    readable = [k for k in KEYS if reads_key(name, k.key) and not k.key.startswith("tune.")]
    picks: list[RangedKey] = draw(
        st.lists(st.sampled_from(readable), min_size=1, max_size=3, unique_by=lambda k: k.key)
    )
    overrides = []
    for k in picks:
        how = draw(st.sampled_from(["inside", "inside", "outside", "wrong type"]))
        if how == "inside":
            value = draw(st.sampled_from(at_the_edges(k)))
        elif how == "outside":
            value = out_of_range(k.rule)
        else:
            value = draw(st.sampled_from(["abc", "[1,2]", "{a: 1}"]))
        overrides.append(f"{k.key}={value}")
    return [f"algo={name}", *algos.get(name).smoke, "logger.progress=off", *overrides]


def _end_after(seconds: float):  # noqa: ANN202
    deadline = time.monotonic() + seconds

    def watcher(run_context) -> None:  # noqa: ANN001
        if time.monotonic() > deadline:
            raise EndRun(run_context.result(), "the test's time is up")

    return watcher


@pytest.mark.integration
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(argv=command_lines())
def test_any_override_combination_trains_or_is_refused_in_one_line(
    argv: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    try:
        precheck(argv)
        cfg = compose(*argv)
    except ConfigError as exc:
        assert "\n" not in str(exc), str(exc)
        event("refused before the run")
        return
    out = tmp_path_factory.mktemp("run")
    try:
        with watch_iterations(_end_after(SECONDS)):
            run(cfg, out)
        event("trained to the end")
    except EndRun:
        event("trained until the time was up")
    except ConfigError as exc:  # a check that needs the env built (spaces, sizes)
        assert "\n" not in str(exc), str(exc)
        event("refused by the run's own checks")
    except NonFiniteError as exc:
        assert "\n" not in str(exc), str(exc)
        event("stopped on a non-finite value")
