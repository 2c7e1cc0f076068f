"""``python -m mbrl_ai.visualize <run dir>``: the world-model figures of
:mod:`mbrl_ai.analysis.visualize` (open-loop predictions against a real episode, model error)."""

import sys

from mbrl_ai.analysis.visualize import main

if __name__ == "__main__":
    sys.exit(main())
