"""The runnable examples: docstring examples and scripts under examples/."""

import doctest
import pathlib
import subprocess
import sys

import keras
import pytest

from keras_adv import metrics
from keras_adv.attacks import apgd
from keras_adv.attacks import apgd_t
from keras_adv.attacks import fgsm
from keras_adv.attacks import mim
from keras_adv.attacks import pgd
from keras_adv.attacks import square
from keras_adv.callbacks import adversarial_monitor
from keras_adv.evaluation import robustness as evaluation

ROOT = pathlib.Path(__file__).parents[1]

# The scripts are backend-neutral keras_adv code whose library paths run on
# every backend in the other test files; one backend's run checks the scripts.
ONE_BACKEND = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="an example script runs on one backend; its library paths on all",
)


@pytest.mark.parametrize(
    "module",
    [fgsm, pgd, mim, apgd, apgd_t, square, evaluation, metrics, adversarial_monitor],
    ids=lambda m: m.__name__,
)
def test_docstring_examples_run(module):
    failures, tried = doctest.testmod(module, raise_on_error=False, verbose=False)
    assert tried > 0 and failures == 0


def run_example(name, *args):
    """Runs `examples/<name>` with `args`; returns its stdout, failing on errors."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
@ONE_BACKEND
def test_quickstart_example_prints_the_table():
    lines = run_example("digits_quickstart.py", "--epochs", "2").splitlines()
    header = next(line for line in lines if line.startswith("training"))
    assert "clean acc" in header and "PGD-20 eps=0.2" in header
    rows = [line for line in lines if line.startswith(("clean ", "FGSM ", "PGD-7"))]
    assert len(rows) == 3
    for row in rows:  # accuracies are numbers in [0, 1]
        cells = [cell.strip() for cell in row.split("|")]
        assert all(0.0 <= float(cell) <= 1.0 for cell in cells[1:4])


@pytest.mark.slow
@ONE_BACKEND
def test_monitor_example_writes_its_figure(tmp_path):
    figure, log = tmp_path / "monitor.png", tmp_path / "log.csv"
    run_example(
        "monitor_existing_pipeline.py", "--epochs", "2", "--out", str(figure),
        "--csv", str(log),
    )  # fmt: skip
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "adv_robust_accuracy" in log.read_text().splitlines()[0]


@pytest.mark.slow
@ONE_BACKEND
def test_honest_evaluation_example_prints_both_tables():
    out = run_example("honest_evaluation.py", "--quick", "--epochs", "2")
    assert out.count("attack | eps 0.1 | eps 0.2") == 2
    worst = [line for line in out.splitlines() if line.startswith("worst case |")]
    pgd = [line for line in out.splitlines() if line.startswith("pgd20 |")]
    for worst_line, pgd_line in zip(worst, pgd, strict=True):
        worst_values = [float(v) for v in worst_line.split("|")[1:]]
        pgd_values = [float(v) for v in pgd_line.split("|")[1:]]
        assert all(w <= p for w, p in zip(worst_values, pgd_values, strict=True))
