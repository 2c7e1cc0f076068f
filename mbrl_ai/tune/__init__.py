"""Scoring runs and tuning configurations.

- ``objective.py``: the score of one run's evaluation curve (steps to threshold, area under the
  curve, final return), its value part-way through, and the aggregate over seeds.
- ``trial.py``: one configuration trained on several seeds and scored; inside an Optuna trial it
  reports each evaluation to the study and stops when the study's pruner says so.
- ``sweeper.py``: the Hydra sweeper ``hydra/sweeper=optuna`` that runs a resumable Optuna study,
  one trial per job of the launcher.
"""
