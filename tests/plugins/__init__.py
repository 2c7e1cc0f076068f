"""Algorithms registered from outside the package (``MBRL_AI_PLUGINS``), for the registry tests."""
