# Two commands do everything on a fresh machine:
#   make book   -> venv + install + data + execute every notebook at $(PROFILE) + build _build/html
#   make test   -> venv + install + ruff + pytest + notebooks at smoke + strict build + HTML checks
# Everything they produce lands in _build/ (or .venv/): book/, notebooks/ and lib/ are only read.
PYTHON ?= python3
PROFILE ?= cpu
DEVICE ?= auto
# Profile values changed for one run, e.g. make book SET="eps=0.2 seeds=0,1,2"
SET ?=
VENV := .venv
BIN := $(VENV)/bin
# Trained models and other long results live in $ROBUSTLENS_CACHE, by default
# ~/.cache/robustlens/results: shared by every notebook and every clone
# (lib/robustlens/science/cache.py).
JB_FLAGS := -W -n --keep-going
# Jupyter Book builds from here: book/'s page sources plus the executed notebooks (runner.py).
STAGING := _build/staging
# Bytecode goes to _build too, so not even a __pycache__ appears in lib/ or tests/.
export PYTHONPYCACHEPREFIX := $(CURDIR)/_build/pycache

.PHONY: book test install data notebooks html lint unit browser lab bench clean help

help:
	@sed -n '1,4p' Makefile

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(VENV)/.installed

data: install
	$(BIN)/python -m robustlens fetch-data fashion-mnist

notebooks: data
	$(BIN)/python -m robustlens run --profile $(PROFILE) --device $(DEVICE) $(foreach kv,$(SET),-p $(kv))

html: install
	$(BIN)/python -m robustlens.book.runner --stage-only
	$(BIN)/jupyter-book build $(STAGING) --config _config.yml --path-output . $(JB_FLAGS)

book: notebooks
	$(MAKE) --no-print-directory html
	@echo "The book is in _build/html/index.html (profile $(PROFILE))"

lint: install
	$(BIN)/ruff check lib tests benchmarks
	$(BIN)/ruff format --check lib tests benchmarks

unit: data
	$(BIN)/python -m pytest -m "not built_book"

# The browser test drives Debian's chromium (Playwright's own browser download needs internet).
browser:
	command -v chromium >/dev/null || apt-get install -y -q chromium \
		|| sudo -n apt-get install -y -q chromium \
		|| (echo "install chromium (apt-get install chromium) for the browser test" && false)

test: lint unit browser
	$(MAKE) --no-print-directory notebooks PROFILE=smoke
	$(MAKE) --no-print-directory html
	REQUIRE_BUILT_BOOK=1 $(BIN)/python -m pytest -m built_book

# Every benchmark in one run: a table, and _build/bench.json (machine recorded).
bench: data
	$(BIN)/python benchmarks/bench_all.py --out _build/bench.json

# The chapters in JupyterLab, cell by cell: jupytext opens the MyST sources as notebooks.
# (pip then warns that torchattacks pins requests~=2.25.1: torchattacks never imports requests.
# As root, e.g. in a container, Jupyter needs --allow-root.)
lab: data
	$(BIN)/python -m pip install -q --disable-pip-version-check jupyterlab==4.6.6
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) \
		--ServerApp.contents_manager_class=jupytext.TextFileContentsManager

clean:
	rm -rf _build
