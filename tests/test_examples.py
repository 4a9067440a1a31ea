"""The runnable examples: docstring examples and scripts under examples/."""

import ast
import doctest
import json
import os
import pathlib
import subprocess
import sys

import keras
import pytest

from keras_adv import metrics
from keras_adv.attacks import apgd
from keras_adv.attacks import apgd_t
from keras_adv.attacks import fab
from keras_adv.attacks import fgsm
from keras_adv.attacks import mim
from keras_adv.attacks import nfgsm
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
    [
        fgsm,
        nfgsm,
        pgd,
        mim,
        apgd,
        apgd_t,
        fab,
        square,
        evaluation,
        metrics,
        adversarial_monitor,
    ],  # fmt: skip
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


@pytest.mark.slow
@ONE_BACKEND
def test_text_example_fgm_beats_the_clean_twin_in_embedding_space():
    out = run_example("text_embedding_adversarial.py", "--examples", "2000")
    rows = {
        line.split(" | ")[0]: [float(v) for v in line.split(" | ")[1:]]
        for line in out.splitlines()
        if line.startswith(("clean |", "FGM "))
    }
    clean, fgm = rows["clean"], rows["FGM eps=0.3"]
    assert min(clean[0], fgm[0]) >= 0.95  # equal clean accuracy, near 1
    assert fgm[3] >= clean[3] + 0.1  # robust accuracy at the largest budget
    assert fgm[6] <= clean[6] - 0.1  # fewer predictions flipped there


# A stand-in for SLURM's sbatch: records each call; an array runs its tasks
# at once, each with the array's environment and its output in a file (as
# SLURM's --output); a --wrap job runs its command; prints the job's id.
FAKE_SBATCH = """#!{python}
import os, subprocess, sys
args = sys.argv[1:]
with open(os.environ["SBATCH_CALLS"], "a") as log:
    log.write(" ".join(args) + "\\n")
array = [a.split("=", 1)[1] for a in args if a.startswith("--array=")]
if array:
    first, last = map(int, array[0].split("-"))
    tasks = [
        subprocess.Popen(
            ["bash", args[-1]],
            stdout=open(f"task-{{i}}.out", "w"),
            stderr=subprocess.STDOUT,
            env={{**os.environ, "SLURM_ARRAY_TASK_ID": str(i),
                 "SLURM_ARRAY_TASK_MIN": str(first),
                 "SLURM_ARRAY_TASK_COUNT": str(last - first + 1)}},
        )
        for i in range(first, last + 1)
    ]
    codes = [task.wait(timeout=600) for task in tasks]
    assert codes == [0] * len(tasks), codes
    print("1001")
else:
    (command,) = [a.split("=", 1)[1] for a in args if a.startswith("--wrap=")]
    subprocess.run(["bash", "-c", command], check=True, timeout=600,
                   stdout=open("report.out", "w"), stderr=subprocess.STDOUT)
    print("1002")
"""


@pytest.mark.slow
@ONE_BACKEND
def test_slurm_example_runs_an_array_then_its_report(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(FAKE_SBATCH.format(python=sys.executable))
    sbatch.chmod(0o755)
    (tmp_path / "tiny.toml").write_text(
        'name = "tiny"\ntrain_eps = [0.0, 0.1]\nattack_eps = [0.0, 0.1]\n'
        'attacks = ["fgsm"]\ntrain_attack = "fgsm"\nepochs = 1\n'
        "max_test_examples = 32\nchecks = false\n"
    )
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "SBATCH_CALLS": str(tmp_path / "calls.log"),
        "CONFIG": "tiny.toml",
        "SHARDS": "2",
        "KERAS_ADV": f"{sys.executable} -m keras_adv",
    }
    result = subprocess.run(
        ["bash", str(ROOT / "examples" / "slurm_sweep.sh")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "submitted the array (2 tasks)" in result.stdout
    calls = (tmp_path / "calls.log").read_text()
    array, report = calls.splitlines()
    assert "--array=0-1" in array
    assert "--dependency=afterany:1001" in report and "report runs/tiny" in report
    results = json.loads((tmp_path / "runs" / "tiny" / "results.json").read_text())
    assert results["missing"] == [] and set(results["training"]) == {"0", "0.1"}
    assert (tmp_path / "runs" / "tiny" / "report.md").exists()


@pytest.mark.slow
@ONE_BACKEND
def test_the_readme_quickstart_runs_as_printed(tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "quickstart.py"
    script.write_text(code)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    clean, rest = result.stdout.split(" ", 1)
    robust, worst = rest.rsplit("} ", 1)
    robust = ast.literal_eval(robust + "}")  # the printed dict of lists
    worst = json.loads(worst)
    assert float(clean) > 0.8  # PGD training keeps most of the clean accuracy
    assert set(robust) == {"fgsm", "pgd20"}
    # The worst case is at or below each attack's accuracy, budget by budget.
    columns = zip(worst, *robust.values(), strict=True)
    assert all(w <= min(r) + 1e-9 for w, *r in columns)


@pytest.mark.slow
@ONE_BACKEND
def test_the_migration_page_keras_adv_code_runs():
    """Each keras-adv block of docs/migrating.md, on a small digits model."""
    import numpy as np

    import keras_adv
    from keras_adv.experiments.data import load_digits

    (x, y), _ = load_digits(seed=0)
    x, y = x[:64].reshape(64, -1), y[:64]
    text = (ROOT / "docs" / "migrating.md").read_text()
    blocks = [
        block.split("```", 1)[0]
        for block in text.split("```python\n")[1:]
        if block.startswith("# keras-adv")
    ]
    assert len(blocks) == 4
    for block in blocks:

        def dense():
            return keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])

        namespace = {"keras": keras, "keras_adv": keras_adv, "np": np, "x": x, "y": y,
                     "base_model": dense(), "model": dense()}  # fmt: skip
        exec(compile(block, "migrating.md", "exec"), namespace)
    # the CleverHans block's examples are within their budgets
    assert np.abs(namespace["x_pgd"] - x).max() <= 0.3 + 1e-6
