"""The command line around ``python -m mbrl_ai.train``: the pre-check of every override before any
work starts (``precheck``) and the ``--help`` text read from the config's declarations (``help``)."""
