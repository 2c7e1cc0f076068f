"""Offline analysis of run directories: comparison reports (``report``), world-model figures
(``visualize``) and the W&B report builder (``wandb_report``)."""
