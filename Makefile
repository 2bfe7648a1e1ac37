# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test setup lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "mmsgate needs Python 3.11 or newer"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: install your system's venv package (Debian/Ubuntu: apt-get install python3-venv)"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

## run: set up and start the gateway on http://127.0.0.1:8080 (SQLite, sandbox carrier, console)
run: $(STAMP)
	$(BIN)/mmsgate serve

## test: set up and run everything: ruff, mypy --strict, the whole pytest suite (SQLite and PostgreSQL,
## the npm SMSC peer, headless Chromium)
test: $(STAMP)
	@bash scripts/ensure-postgres.sh
	@bash scripts/ensure-test-tools.sh
	$(BIN)/ruff check mmsgate tests bench
	$(BIN)/ruff format --check mmsgate tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python bench/accept.py

clean:
	rm -rf $(VENV) mmsgate-data .mypy_cache .ruff_cache
