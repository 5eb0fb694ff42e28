# Two commands do everything on a fresh machine:
#   make book   -> venv + install + data + execute every notebook at $(PROFILE) + build _build/html
#   make test   -> venv + install + data + pytest + every notebook at smoke + strict build + HTML checks
PYTHON ?= python3
PROFILE ?= cpu
DEVICE ?= auto
VENV := .venv
BIN := $(VENV)/bin
# Trained models and other long results live in $ROBUSTLENS_CACHE, by default
# ~/.cache/robustlens/results: shared by every notebook and every clone (lib/robustlens/cache.py).
JB_FLAGS := -W -n --keep-going

.PHONY: book test install data notebooks html unit clean help

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
	$(BIN)/python -m robustlens run --profile $(PROFILE) --device $(DEVICE)

html: install
	$(BIN)/jupyter-book build book --config _config.yml --path-output . $(JB_FLAGS)

book: notebooks
	$(MAKE) --no-print-directory html
	@echo "The book is in _build/html/index.html (profile $(PROFILE))"

unit: data
	$(BIN)/python -m pytest -m "not built_book"

test: unit
	$(MAKE) --no-print-directory notebooks PROFILE=smoke
	$(MAKE) --no-print-directory html
	REQUIRE_BUILT_BOOK=1 $(BIN)/python -m pytest -m built_book

clean:
	rm -rf _build book/*.ipynb
