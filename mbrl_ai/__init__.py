"""mbrl_ai: model-based reinforcement learning in plain PyTorch."""

__version__ = "0.1.0"
