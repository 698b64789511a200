# The README's two commands: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch: exactly this pin on these machines (a local CPU build); any other pin downloads GBs.
TORCH_PIN ?= torch==2.13.0
HOST ?= 127.0.0.1
PORT ?= 8000
# Training jobs the local worker runs at once on CPU (one thread each).
CPU_SLOTS ?= 2

.PHONY: run test lint typecheck pytest openapi client bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The local worker trains with torch and the dashboard draws plots with matplotlib, so
# `make run` installs the train and plots extras too.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q "$(TORCH_PIN)"
	$(BIN)/python -m pip install -q -e ".[train,plots]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q "$(TORCH_PIN)"
	$(BIN)/python -m pip install -q -e ".[dev,train,plots,ray]"
	touch $@ $(VENV)/.installed-run

# The API and a local worker (CPU: CPU_SLOTS training jobs at a time); Ctrl-C stops both.
run: $(VENV)/.installed-run
	mkdir -p var
	$(BIN)/scaling-service migrate
	$(BIN)/scaling-service worker --executor local --cpu-slots $(CPU_SLOTS) & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	SCALING_AUTH=false $(BIN)/scaling-service serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-dev lint typecheck pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check service tests bench migrations scripts
	$(BIN)/ruff format --check service tests bench migrations scripts

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not ray" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m ray $(PYTEST_ARGS)

openapi: $(VENV)/.installed-run
	$(BIN)/scaling-service openapi > openapi/openapi.json

# The sync client, generated from the async one (tests/client/test_client_generated.py checks it).
client: $(VENV)/.installed-dev
	$(BIN)/python scripts/make_sync_client.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
