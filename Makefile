# Two entry points: `make demo` and `make test`. Each creates/refreshes .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q 'torch==2.13.0'  # the CPU wheel on disk; never a CUDA build
	$(BIN)/python -m pip install -q -e '.[dev,torch,ray]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/avworld demo --out runs/demo

lint: $(STAMP)
	$(BIN)/ruff check --no-cache src tests benchmarks

test: $(STAMP)
	$(BIN)/ruff check --no-cache src tests benchmarks
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
