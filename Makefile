# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test test-fast test-oldest-keras lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,jax,torch,ray]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/keras-adv sweep --name demo

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

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/generate_speed.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
