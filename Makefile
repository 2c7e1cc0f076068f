# The front door: `make train` and `make test` set everything up on a fresh machine.
# GPU users pick their PyTorch build, e.g.  make train TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu124"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev
# pinned versions of every other package, so that two fresh installs are the same (`make constraints`)
CONSTRAINTS ?= constraints.txt
# test processes (pytest-xdist); the learning tests are long, so two cores halve the suite
JOBS ?= 2
ARGS ?=
PYTEST_ARGS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(EXTRAS)

.PHONY: install train test test-fast lint type format bench constraints clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip setuptools wheel

# torch first, so that nothing below pulls a different (multi-GB CUDA) build. The compat editable
# mode puts the checkout on sys.path, where Hydra's plugin scan finds hydra_plugins/ (the
# default editable finder hides it from that scan).
$(STAMP): $(BIN)/python setup.cfg pyproject.toml $(CONSTRAINTS)
	$(BIN)/python -m pip install "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -c $(CONSTRAINTS) --config-settings editable_mode=compat -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(BIN)/python -m mbrl_ai.train $(ARGS)

# the notebooks run too (nbmake), each on a budget of a few thousand steps
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(JOBS) --dist worksteal --durations=15 --nbmake tests notebooks $(PYTEST_ARGS)

# the unit tests only: no learning test, no whole run through the command line
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n $(JOBS) --dist worksteal --durations=15 -m "not slow and not integration" --nbmake tests notebooks $(PYTEST_ARGS)

# ruff settings live here: pyproject.toml holds the build-system table only. The layering
# contract (setup.cfg [importlinter]) keeps imports pointing one way.
RUFF_OPTS := --line-length 100 --target-version py310
RUFF_RULES := --select E,F,W,I,B,UP,SIM --ignore E501
LINT_PATHS := mbrl_ai tests experiments

lint: $(STAMP)
	$(BIN)/ruff check $(RUFF_OPTS) $(RUFF_RULES) $(LINT_PATHS)
	$(BIN)/ruff format --check $(RUFF_OPTS) $(LINT_PATHS)
	$(BIN)/lint-imports --config setup.cfg

type: $(STAMP)
	$(BIN)/mypy mbrl_ai

format: $(STAMP)
	$(BIN)/ruff format $(RUFF_OPTS) $(LINT_PATHS)
	$(BIN)/ruff check --fix $(RUFF_OPTS) $(RUFF_RULES) $(LINT_PATHS)

bench: $(STAMP)
	$(BIN)/python experiments/ppo_baseline/run.py
	$(BIN)/python experiments/ppo_baseline/pendulum.py

# re-pin: install without constraints into a scratch venv, then freeze (torch stays TORCH_SPEC's)
constraints:
	rm -rf .venv-pin && $(PYTHON) -m venv .venv-pin
	.venv-pin/bin/python -m pip install --upgrade pip setuptools wheel
	.venv-pin/bin/python -m pip install "$(TORCH_SPEC)"
	.venv-pin/bin/python -m pip install -e ".[dev]"
	( echo "# pip constraints for 'make install' (regenerate with 'make constraints'); torch is TORCH_SPEC's"; \
	  .venv-pin/bin/python -m pip freeze --exclude-editable | grep -v -i -E '^(torch|nvidia-|triton)' ) > $(CONSTRAINTS)
	rm -rf .venv-pin

clean:
	rm -rf $(VENV) outputs multirun tuning runs .pytest_cache .ruff_cache *.egg-info
