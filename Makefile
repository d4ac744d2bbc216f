# The two commands of the README quick start: `make demo` and `make test`.
# Each creates .venv on first use and installs the project with its dev extras.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint protos bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/govshare demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# mypy cannot follow setuptools' editable import hook, so it reads the
	@# rooms through a tree of symlinks laid out as the installed package.
	rm -rf build/typecheck && mkdir -p build/typecheck/govshare
	for room in gateway directory adapters; do ln -s ../../../$$room build/typecheck/govshare/$$room; done
	ln -s ../../../protos/python build/typecheck/govshare/api
	MYPYPATH=build/typecheck $(BIN)/mypy -p govshare.gateway -p govshare.directory -p govshare.adapters

protos: $(STAMP)
	$(BIN)/python protos/generate.py

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .govshare
