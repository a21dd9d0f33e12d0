# attncc developer tasks. `make test` and `make demo` build their own virtual environment.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: test demo lint clean

# the venv is (re)installed whenever the dependency pins change
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check attncc tests examples benchmarks
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/python examples/export_library.py

lint: $(STAMP)
	$(BIN)/ruff check attncc tests examples benchmarks
	$(BIN)/ruff format --check attncc

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
