# Two commands on a fresh machine:
#   make demo   — virtualenv, demo consortium, whole pipeline, catalogue on http://127.0.0.1:5000
#                 (make demo PORT=5050 HOST=0.0.0.0 for another port or address)
#   make test   — everything the tests need, then the whole suite (what CI runs)
# The virtualenv's interpreter: the distribution's optimised build where there is one (scripts/pick-python.sh).
PY ?= $(shell sh scripts/pick-python.sh)
VENV := .venv
BIN := $(VENV)/bin
export UNIONCAT_CACHE ?= $(CURDIR)/.cache
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: demo test install system-deps compiled bench bench-zoom bench-staff bench-jobs clean

# After the Debian packages: python3-venv is among them, for the distribution's interpreter.
$(BIN)/.installed: pyproject.toml | system-deps
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# setuptools adds an information-only UserWarning to every editable install of a multi-package tree
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/pip install --quiet -e '.[test,compile]'
	touch $@

install: $(BIN)/.installed system-deps

# Opt-in: the record-handling modules compiled with Cython (unioncat/compiled.py says when it pays: measure first).
compiled: $(BIN)/.installed system-deps
	$(BIN)/python scripts/compile_modules.py

# Debian packages (scripts/install-system-deps.sh lists each and why); skips apt when present.
system-deps:
	sh scripts/install-system-deps.sh

demo: install
	$(BIN)/unioncat demo --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/pipeline.py --records 50000

bench-zoom: install
	$(BIN)/python bench/zoom.py

bench-staff: install
	$(BIN)/python bench/staff.py

bench-jobs: install
	$(BIN)/python bench/jobs.py --records 20000

# the consortium-scale build (issue 14): SCALE=500000, 1000000, 2000000, 5000000; ~10 KB of disk per member record
SCALE ?= 500000
bench-scale: install
	$(BIN)/python bench/scale.py --members-records $(SCALE)
	$(BIN)/python bench/scale.py --plot --table

clean:
	rm -rf var .pytest_cache build dist .build
