# `make demo` and `make test` work on a fresh machine: both build .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SHELL := /bin/bash

.PHONY: demo test lint fuzz bench diagrams dot clean

$(VENV): requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(VENV)

# Graphviz's `dot` renders .svg/.png/.pdf (unetviz writes .dot without it).
dot:
	@command -v dot >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -q && apt-get install -y -q graphviz) >/dev/null; \
	  else echo "note: install Graphviz for diagrams (apt-get install graphviz / brew install graphviz)"; fi; }

demo: $(VENV) dot
	$(PY) -m unetviz table --preset sd15 --depth units

test: $(VENV) dot
	$(PY) -m pytest -q -p no:cacheprovider
	$(PY) -m ruff check unetviz tests benchmarks docs
	$(PY) -m mypy

lint: $(VENV)
	$(PY) -m ruff check unetviz tests benchmarks docs
	$(PY) -m mypy

# A longer differential run: more hypothesis examples per family against the real models.
fuzz: $(VENV)
	UNETVIZ_FUZZ_EXAMPLES=$${UNETVIZ_FUZZ_EXAMPLES:-300} $(PY) -m pytest -q -m slow

bench: $(VENV) dot
	$(PY) benchmarks/bench_table.py
	$(PY) benchmarks/bench_verify.py
	$(PY) benchmarks/bench_graph.py

diagrams: $(VENV) dot
	$(PY) docs/render_diagrams.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
