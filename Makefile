# bottleneck-nas — set-up, main job, tests, benchmarks.
# `make search` and `make test` each set everything up first on a fresh machine.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
DATA    := /usr/share/datasets/fashion-mnist
STAMP   := $(VENV)/.installed
ARGS    ?=

.PHONY: setup data postgresql search test test-all lint bench clean

setup: $(STAMP) data postgresql

# The pinned CPU torch goes in first: letting pip pick torch freely pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,onnx,postgres,tracking]'
	touch $(STAMP)

# Fashion-MNIST from Debian's dataset-fashion-mnist (MIT licence).
data:
	@if [ ! -f $(DATA)/train-images-idx3-ubyte.gz ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q dataset-fashion-mnist; \
	fi

# Debian's PostgreSQL server (initdb, pg_ctl) for the scale-out tests, which start their own server on a
# temporary directory and a loopback port.
postgresql:
	@if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  if ! apt-cache policy postgresql 2>/dev/null | grep -q 'Candidate: [0-9]'; then $$SUDO apt-get update -q; fi; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; \
	fi

search: setup
	RAY_AUTH_MODE=disabled $(BIN)/nas search --budget 1.5M $(ARGS)

test: setup
	RAY_AUTH_MODE=disabled $(BIN)/pytest -q -m "not slow" $(ARGS)

test-all: setup
	RAY_AUTH_MODE=disabled $(BIN)/pytest -q $(ARGS)

lint: setup
	$(BIN)/ruff check nas tests bench

bench: setup
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
