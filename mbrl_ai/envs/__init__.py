"""Environments: construction and vectorisation (``make``), the non-stationary conditions
(``conditions``), the mazes and tasks registered as ``mbrl_ai/...`` ids (``mazes``, ``tasks``),
known rewards and terminations for ablations (``rewards``, ``termination``) and the exact
evaluation of tabular policies (``tabular``)."""

from mbrl_ai.envs.make import (
    FLATTENABLE,
    EnvInfo,
    FlatObservation,
    final_observations,
    find_spec,
    get_env_state,
    inspect_env,
    make_env,
    make_vec_env,
    needs_flattening,
    refuse_untrusted_module,
    set_env_state,
)

__all__ = [
    "FLATTENABLE",
    "EnvInfo",
    "FlatObservation",
    "final_observations",
    "find_spec",
    "get_env_state",
    "inspect_env",
    "make_env",
    "make_vec_env",
    "needs_flattening",
    "refuse_untrusted_module",
    "set_env_state",
]
