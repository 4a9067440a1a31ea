# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of PyTorch: any other spec pulls a multi-GB CUDA build on
# this project's machines. The package itself asks only for a range.
TORCH ?= 2.13.0

.PHONY: demo sample docs test test-fast test-oldest-keras check-install lint bench clean

# The demo needs keras-adv and one backend (TensorFlow unless told:
# `make demo DEMO_BACKEND=jax`); the suite needs all three and the extras.
DEMO_BACKEND ?= tensorflow
DEMO_STAMP := $(VENV)/.installed-demo-$(DEMO_BACKEND)
STAMP := $(VENV)/.installed

$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(DEMO_BACKEND)]" \
		$(if $(filter torch,$(DEMO_BACKEND)),"torch==$(TORCH)")
	touch $@

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,docs,tensorflow,jax,ray]" \
		"torch==$(TORCH)"
	touch $@

demo: $(DEMO_STAMP)
	KERAS_BACKEND=$(DEMO_BACKEND) $(BIN)/keras-adv sweep --name demo

# docs/sample/: a fresh demo run's results.json, report and figures (the
# suite checks the report is what the report code renders from them).
sample: $(DEMO_STAMP)
	rm -rf runs/sample
	KERAS_BACKEND=$(DEMO_BACKEND) $(BIN)/keras-adv sweep --name sample --quiet
	cp runs/sample/results.json runs/sample/report.md runs/sample/*.png docs/sample/

# The whole suite once per Keras backend (KERAS_BACKEND is read at import),
# spread over TEST_WORKERS processes (pytest-xdist; 0 runs in one process).
# Most of a test's time is single-threaded tracing and Python, so two
# workers use two cores where one process leaves one idle.
BACKENDS ?= tensorflow jax torch
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS)
test: $(STAMP)
	for backend in $(BACKENDS); do \
		echo "== KERAS_BACKEND=$$backend"; \
		KERAS_BACKEND=$$backend $(PYTEST) --durations=15 || exit 1; \
	done

# The edit loop: tests not marked slow (each under a few seconds), one
# backend unless told (`make test-fast FAST_BACKENDS="jax torch"`).
FAST_BACKENDS ?= tensorflow
test-fast: $(STAMP)
	for backend in $(FAST_BACKENDS); do \
		echo "== KERAS_BACKEND=$$backend (not slow)"; \
		KERAS_BACKEND=$$backend $(PYTEST) -m "not slow" -q || exit 1; \
	done

# The oldest Keras pyproject.toml allows (its lower bound), over the venv's
# newest: a Keras release that moves an internal fails a test, not a user.
# TensorFlow, the tests not marked slow (the Keras-facing ones all are fast).
KERAS_OLDEST ?= 3.10.0
OLDEST_DIR := $(VENV)/keras-$(KERAS_OLDEST)
test-oldest-keras: $(STAMP)
	test -d $(OLDEST_DIR)/keras || $(BIN)/python -m pip install --quiet \
		--no-deps --target $(OLDEST_DIR) keras==$(KERAS_OLDEST)
	PYTHONPATH=$(OLDEST_DIR) $(BIN)/python -c \
		"import keras; assert keras.__version__ == '$(KERAS_OLDEST)', keras.__version__"
	PYTHONPATH=$(OLDEST_DIR) KERAS_BACKEND=tensorflow \
		$(PYTEST) -m "not slow" -q

# A user's install: keras-adv from a built wheel with one backend and no
# TensorFlow, in an environment of its own, then the main job's smoke run.
INSTALL_CHECK_BACKEND ?= jax
INSTALL_CHECK_DIR ?= build/install-check
check-install:
	rm -rf $(INSTALL_CHECK_DIR)
	$(PYTHON) -m venv $(INSTALL_CHECK_DIR)/venv
	$(INSTALL_CHECK_DIR)/venv/bin/python -m pip install --quiet \
		".[$(INSTALL_CHECK_BACKEND)]"
	if $(INSTALL_CHECK_DIR)/venv/bin/python -c "import tensorflow" 2>/dev/null; \
		then echo "TensorFlow was installed with keras-adv[$(INSTALL_CHECK_BACKEND)]"; \
		exit 1; fi
	cd $(INSTALL_CHECK_DIR) && KERAS_BACKEND=$(INSTALL_CHECK_BACKEND) \
		venv/bin/keras-adv sweep --quick --name quick

# The documentation site (mkdocs.yml): API reference from the docstrings,
# the examples as tutorials; strict, so any warning fails (CI runs it).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/generate_speed.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
