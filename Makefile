# Two commands run everything (see README):  make course   |   make test
# Each sets up what it needs (virtual env, packages, offline model assets, public benchmarks) and reuses it next time.
# Behind a firewall, point DEBIAS_LLM_BENCHMARK_MIRROR at a folder or base URL holding the benchmark files.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready
PRESET ?= quick
OUTPUT ?= runs/latest
NB ?= notebooks/*.ipynb

.PHONY: course test setup assets benchmarks execute clean-venv

course: setup  ## execute every notebook in order with papermill and write a report
	$(BIN)/debias-llm run --preset $(PRESET) --output $(OUTPUT)

# Two pytest workers with one torch thread each. --dist loadscope keeps each notebook, and each test module, in one
# worker, so a notebook's cells run in order in one kernel; tests/conftest.py puts the slowest notebooks first and
# --no-loadscope-reorder keeps that order, so neither worker is left alone with a long notebook at the end.
# TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2

test: setup  ## unit tests, a papermill run, and nbval over every notebook
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=900 -p no:cacheprovider \
		-n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

setup: $(READY) benchmarks

# The stamp depends on pyproject.toml, so a changed dependency list re-runs the install.
$(READY): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/debias-llm download
	touch $(READY)

assets: $(READY)  ## fetch the offline model assets again (idempotent)
	$(BIN)/debias-llm download

# Every run: cheap when the cache is complete (each file's sha256 is checked, nothing is fetched).
benchmarks: $(READY)  ## fetch BOLD, CrowS-Pairs, HolisticBias and debiaswe into the cache (idempotent)
	$(BIN)/debias-llm download --benchmarks

# Re-execute notebooks in place from a clean kernel, as committed (authors only):  make execute NB=notebooks/00_overview.ipynb
execute: $(READY)
	for nb in $(NB); do \
		$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=900 --ExecutePreprocessor.kernel_name=python3 "$$nb" || exit 1; \
	done

clean-venv:
	rm -rf $(VENV)
