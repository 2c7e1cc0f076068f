"""Hydra finds sweepers in the ``hydra_plugins`` namespace only: this is where it finds the
Optuna sweeper of ``mbrl_ai`` (``hydra/sweeper=optuna``), which lives in ``mbrl_ai.tune``."""

from mbrl_ai.tune.sweeper import OptunaSweeper as _OptunaSweeper


class OptunaSweeper(_OptunaSweeper):
    """:class:`mbrl_ai.tune.sweeper.OptunaSweeper`, under the name Hydra accepts."""


__all__ = ["OptunaSweeper"]
