"""``python -m mbrl_ai.report <run or sweep dirs...>``: the comparison report of
:mod:`mbrl_ai.analysis.report` (tables, figures; a tuning sweep's ``tuning.md``)."""

import sys

from mbrl_ai.analysis.report import main

if __name__ == "__main__":
    sys.exit(main())
