import contextlib
import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Test-harness settings, made before Keras imports its backend:
# - Each pytest-xdist worker gets its share of the cores. PyTorch's CPU
#   kernels otherwise start one thread per core in every worker; two workers
#   on two cores then ran PGD training 4x slower (12.0 s an epoch instead of
#   3.2 s, benchmarked in the closing note of the test-time work).
# - JAX keeps compiled programs on disk, shared by the workers and by the
#   tests: each test builds a new model, so Keras jits new functions whose
#   programs are often ones another test already compiled (a tiny sweep on
#   JAX: 43 s cold, 20 s with the cache warm).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        ".pytest_cache",
        "jax-compilation",
    ),
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import keras_adv_cli  # noqa: E402
from keras_adv.experiments.data import load_digits  # noqa: E402


@pytest.fixture(scope="session")
def digits():
    """Digits flattened to 64 features in [0, 1]: ((x, y) train, (x, y) test)."""
    (x_train, y_train), (x_test, y_test) = load_digits(seed=0)
    return (x_train.reshape(-1, 64), y_train), (x_test.reshape(-1, 64), y_test)


def mlp(activation=None, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation=activation),
        ]
    )


def softmax(z):
    """Row-wise softmax in NumPy, for formulas computed by hand."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def linear_grads(w, b, x, y):
    """A linear softmax model's crossentropy, by hand: `(d/dw, d/db)` of the
    batch mean and `d/dx` of each example's own loss."""
    residual = softmax(x @ w + b)
    residual[np.arange(len(y)), y] -= 1.0
    return x.T @ residual / len(y), residual.sum(axis=0) / len(y), residual @ w.T


def linear_model(features, classes, scale=1.0, bias=None, seed=0, name=None):
    """`Input -> Dense` with NumPy-drawn weights, the same on every backend."""
    inputs = keras.Input((features,), name=name)
    model = keras.Model(inputs, keras.layers.Dense(classes)(inputs))
    rng = np.random.default_rng(seed)
    bias = np.zeros(classes) if bias is None else np.asarray(bias)
    model.set_weights(
        [rng.normal(0, scale, (features, classes)).astype("float32"), bias]
    )
    return model


@pytest.fixture(scope="session")
def trained_logits_model(digits):
    """A small MLP trained on digits (about 95% test accuracy), outputs logits."""
    (x_train, y_train), _ = digits
    model = mlp()
    model.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x_train, y_train, epochs=15, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="session")
def trained_probs_model(trained_logits_model):
    """The same network with a softmax head: outputs probabilities."""
    return keras.Sequential([trained_logits_model, keras.layers.Softmax()])


def forward_of(model):
    return lambda x: model(x, training=False)


def per_example_loss(model, x, y):
    """Crossentropy per example, computed with NumPy from the logits."""
    logits = np.asarray(model.predict(x, verbose=0), dtype="float64")
    logits -= logits.max(axis=1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(y)), y]


def count_traces(attack):
    """Wraps the attack's entry points to count their Python calls (traces,
    when compiled): `perturb` and `perturb_and_predict`, a call of one
    inside the other counted once."""
    traces, depth = [], []

    def counting(method):
        def call(*args):
            if not depth:
                traces.append(1)
            depth.append(1)
            try:
                return method(*args)
            finally:
                depth.pop()

        return call

    attack.perturb = counting(attack.perturb)
    attack.perturb_and_predict = counting(attack.perturb_and_predict)
    return traces


def dict_input_model(attack, n=32):
    """A model with a float `image` and an integer `ids` input, and its data."""
    keras.utils.set_random_seed(0)
    image = keras.Input((6,), name="image")
    ids = keras.Input((3,), dtype="int32", name="ids")
    embedded = keras.layers.Flatten()(keras.layers.Embedding(10, 2)(ids))
    outputs = keras.layers.Dense(2)(keras.layers.Concatenate()([image, embedded]))
    from keras_adv import AdversarialModel

    inputs = {"image": image, "ids": ids}
    rng = np.random.default_rng(0)
    x = {
        "image": rng.uniform(size=(n, 6)).astype("float32"),
        "ids": rng.integers(0, 10, (n, 3)).astype("int32"),
    }
    y = rng.integers(0, 2, n).astype("int32")
    return AdversarialModel(inputs, outputs, attack=attack), (inputs, outputs), x, y


@pytest.fixture(scope="session")
def digits_images(digits):
    """The digits test split as 8x8x1 images, for attacks that need images."""
    _, (x, y) = digits
    return x.reshape(-1, 8, 8, 1), y


@pytest.fixture(scope="session")
def trained_image_model(trained_logits_model):
    """The trained MLP taking 8x8x1 images (a reshape in front)."""
    return keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Reshape((64,)), trained_logits_model]
    )


class GradientMask(keras.layers.Layer):
    """The identity forwards, a zero gradient backwards: planted gradient masking."""

    def call(self, inputs):
        return keras.ops.stop_gradient(inputs)


def masked(model, input_shape):
    """`model` behind a `GradientMask`: same predictions, zero input gradients."""
    return keras.Sequential([keras.Input(input_shape), GradientMask(), model])


def run_cli(*args, cwd=None):
    """`keras-adv ARGS` in this process: exit code, stdout, stderr.

    In-process, so each call does not pay for importing TensorFlow again;
    `test_python_dash_m_runs_the_cli` covers the real entry point.
    """
    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    try:
        os.chdir(cwd or previous)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = keras_adv_cli.main(list(args))
            except SystemExit as exit_:  # argparse's own errors
                code = exit_.code
    finally:
        os.chdir(previous)
    return code, out.getvalue(), err.getvalue()


def assert_refused(code, err, *fragments):
    """A refusal of bad input: exit 2, one line on stderr (no traceback),
    starting `keras-adv` and holding each fragment."""
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, (code, err)
    assert lines[0].startswith("keras-adv"), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def start_cli(*args, cwd, env=None):
    """`python -m keras_adv ARGS` as a process of its own session (its
    children too: Ray's), output captured; end it with `end_session`."""
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "keras_adv", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(process, timeout):
    """Waits at most `timeout` seconds for `process`; its exit code and output."""
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def end_session(process):
    """Kills every process still in `process`'s session, by process id
    (children that started process groups of their own included)."""
    import signal

    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue  # ended meanwhile
        session = int(stat.rsplit(")", 1)[1].split()[3])  # state ppid pgrp session
        if session == process.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry), signal.SIGKILL)
    with contextlib.suppress(Exception):
        process.communicate(timeout=5)
