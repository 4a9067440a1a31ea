import json
import os
import subprocess
import sys

import pytest
from conftest import assert_refused
from conftest import run_cli

import keras_adv
import keras_adv_cli


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        keras_adv_cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"keras-adv {keras_adv.__version__}"


def test_help_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        keras_adv_cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "usage: keras-adv" in capsys.readouterr().out


def test_unknown_flag_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        keras_adv_cli.main(["--no-such-flag"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


FRAMEWORK_MODULES = ("keras", "tensorflow", "jax", "torch", "numpy")


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], [], ["sweep", "--help"], ["sweep", "--epochs", "x"]],
)
def test_help_version_and_argument_errors_load_no_framework(argv):
    # The entry point in a fresh interpreter: nothing of a deep learning
    # framework (or NumPy) may be imported to answer these.
    code = (
        "import sys, keras_adv_cli\n"
        "try:\n    keras_adv_cli.main(sys.argv[1:])\n"
        "except SystemExit:\n    pass\n"
        f"print('LOADED', [m for m in {FRAMEWORK_MODULES!r} if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60
    )
    assert "LOADED []" in result.stdout, result.stdout + result.stderr


def _without(module, code, backend):
    """Runs `code` in a Python where importing `module` fails, as when it is
    not installed; returns the finished process."""
    prelude = f"import sys; sys.modules[{module!r}] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KERAS_BACKEND": backend},
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_missing_backend_names_the_extra_that_installs_it(backend):
    result = _without(backend, "import keras_adv", backend)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0
    assert last.startswith("ModuleNotFoundError: KERAS_BACKEND=" + backend), last
    assert f"pip install 'keras-adv[{backend}]'" in last, last
    # The command says it in one line, exit status 1 (the set-up, not a bug).
    result = _without(
        backend,
        "import keras_adv_cli; sys.exit(keras_adv_cli.main(['report', 'nowhere']))",
        backend,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("keras-adv report: error: KERAS_BACKEND=" + backend)
    assert f"keras-adv[{backend}]" in lines[0]


@pytest.mark.slow
def test_the_framework_log_lines_are_hidden_unless_verbose(tmp_path):
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the lines are TensorFlow's")

    def run(*flags):
        return subprocess.run(
            [sys.executable, "-m", "keras_adv_cli", "sweep", "--quick", "--list"]
            + list(flags),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
        )

    quiet, verbose = run(), run("--verbose")
    assert quiet.returncode == 0 and verbose.returncode == 0, verbose.stderr
    assert quiet.stderr == "", quiet.stderr
    assert "unit 1/2 | train_eps_0 | to do" in quiet.stdout
    # What is hidden is there: TensorFlow's C++ start-up lines.
    assert "I0000" in verbose.stderr or "tensorflow" in verbose.stderr.lower()


@pytest.mark.slow
def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "keras_adv", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"keras-adv {keras_adv.__version__}"


TINY = [
    "--train-eps",
    "0",
    "0.1",
    "--attack-eps",
    "0",
    "0.1",
    "--attacks",
    "fgsm",
    "--train-attack",
    "fgsm",  # PGD-7 training costs time; test_sweep trains with it
    "--epochs",
    "1",
    "--max-test-examples",
    "64",
    "--no-checks",
]


@pytest.mark.slow
def test_sweep_writes_the_run_folder_and_resumes(tmp_path):
    code, out, err = run_cli("sweep", "--out", str(tmp_path), "--name", "t", *TINY)
    assert code == 0, err[-2000:]
    folder = tmp_path / "t"
    for name in [
        "results.json",
        "results.csv",
        "report.md",
        "heatmap.png",
        "robust_accuracy.png",
        "strength_vs_effect.png",
    ]:
        assert (folder / name).exists(), name
    assert sum(line.startswith("train eps") for line in out.splitlines()) == 4
    saved = json.loads((folder / "results.json").read_text())
    assert saved["settings"]["checks"] is False  # --no-checks
    assert "not run (checks = false)" in (folder / "report.md").read_text()
    # A rerun with the same settings has nothing left to do.
    code, out, _ = run_cli("sweep", "--out", str(tmp_path), "--name", "t", *TINY)
    assert code == 0 and " | cell " not in out and "| epoch " not in out
    # Other settings into the same folder are refused.
    code, _, err = run_cli(
        "sweep", "--out", str(tmp_path), "--name", "t", *TINY, "--seed", "5"
    )
    assert_refused(code, err, "other settings", "--overwrite")


@pytest.mark.slow
def test_quiet_prints_nothing(tmp_path):
    code, out, _ = run_cli("sweep", "--out", str(tmp_path), *TINY, "--quiet")
    assert code == 0 and out == ""


@pytest.mark.slow
def test_config_file_mirrors_the_flags(tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text(
        "train_eps = [0.0]\nattack_eps = [0.0, 0.05]\n"
        'attacks = ["fgsm"]\nepochs = 1\nmax-test-examples = 32\n'
        f'out = "{tmp_path}"\nname = "from_config"\n'
    )
    code, out, err = run_cli("sweep", "--config", str(config))
    assert code == 0, err[-2000:]
    results = (tmp_path / "from_config" / "results.json").read_text()
    assert '"max_test_examples": 32' in results


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["sweep", "--dataset", "imagenet"], ["imagenet"]),
        (["sweep", "--train-eps", "-0.1"], ["--train-eps", "finite numbers >= 0"]),
        (["sweep", "--attacks", "cw"], ["pgd<steps>"]),
        (["evaluate", "model.h5"], ["not a .keras model"]),
        (["train", "--output", "model.h5"], [".keras"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, fragments):
    code, _, err = run_cli(*args, cwd=tmp_path)
    assert_refused(code, err, *fragments)


def test_empty_epsilon_list_and_unknown_config_key(tmp_path):
    code, _, err = run_cli("sweep", "--train-eps", cwd=tmp_path)
    assert code == 2 and "Traceback" not in err  # argparse: expected one argument
    config = tmp_path / "bad.toml"
    config.write_text("train_eps = []\n")
    code, _, err = run_cli("sweep", "--config", str(config), cwd=tmp_path)
    assert_refused(code, err, "train_eps in", "non-empty list")
    config.write_text("lr = 0.1  # a typo of learning_rate\n")
    code, _, err = run_cli("sweep", "--config", str(config), cwd=tmp_path)
    assert_refused(code, err, "unknown key", "'lr'")


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run_cli("sweep", "--out", str(blocker), *TINY)
    assert_refused(code, err, "cannot write")


@pytest.mark.slow
def test_train_then_evaluate(tmp_path):
    model = tmp_path / "robust.keras"
    code, out, err = run_cli(
        "train",
        "--epsilon",
        "0.1",
        "--attack",
        "fgsm",
        "--epochs",
        "1",
        "--output",
        str(model),
        "--quiet",
    )
    assert code == 0 and model.exists(), err[-2000:]
    code, out, err = run_cli(
        "evaluate",
        str(model),
        "--attacks",
        "fgsm",
        "--epsilons",
        "0",
        "0.2",
        "--max-test-examples",
        "64",
    )
    assert code == 0, err[-2000:]
    lines = out.strip().splitlines()
    # a line per attack run first, with its place and the time left
    assert lines[0].startswith("fgsm eps 0.2 | robust acc 0.")
    assert " | attack 1/1 | " in lines[0] and lines[1].startswith("sanity checks on 64")
    lines = lines[lines.index("attack | eps 0 | eps 0.2") :]
    clean, attacked = (float(v) for v in lines[1].split("|")[1:])
    assert attacked < clean
    assert lines[2].startswith("worst case |")
    assert float(lines[2].split("|")[2]) <= attacked
    checks = [line for line in lines if line.startswith("check ")]
    assert len(checks) == 8 and checks[0].startswith("check outputs_are_logits: ok")
    broken = tmp_path / "broken.keras"
    broken.write_text("not a zip")
    code, _, err = run_cli("evaluate", str(broken))
    assert_refused(code, err, "broken.keras", "damaged")


@pytest.mark.slow
def test_a_trained_model_knows_its_data_and_reports_robust_accuracy(tmp_path):
    import numpy as np

    from keras_adv.experiments import results_store
    from keras_adv.experiments.data import fingerprint
    from keras_adv.experiments.data import load

    model = tmp_path / "m.keras"
    args = ["train", "--epsilon", "0.1", "--attack", "fgsm", "--epochs", "1"]
    code, out, err = run_cli(
        *args, "--seed", "3", "--max-test-examples", "64", "--output", str(model)
    )
    assert code == 0, err[-2000:]
    line = next(x for x in out.splitlines() if x.startswith("robust accuracy"))
    assert line.startswith("robust accuracy under pgd20 at eps 0.1: 0.")
    assert "on 64 test examples" in line
    record = results_store.trained_on(str(model))
    assert record["dataset"] == "digits" and record["seed"] == 3
    assert record["sha256"] == fingerprint(load("digits", seed=3))
    assert record["classes"] == 10 and record["input_shape"] == [8, 8, 1]
    assert record["input_range"] == [0.0, 1.0]
    # Without --dataset and --seed, evaluate loads the split of seed 3 (the
    # default seed 0 gives other data, which would be refused).
    evaluate = ["evaluate", str(model), "--attacks", "fgsm", "--epsilons", "0.1"]
    state = str(tmp_path / "state.json")
    small = ["--max-test-examples", "32", "--no-checks", "--state", state]
    code, out, err = run_cli(*evaluate, *small)
    assert code == 0, err[-2000:]
    code, out, err = run_cli(*evaluate, *small)  # resumed: nothing left to run
    assert code == 0 and "1 of 1 attack runs saved in" in out, out
    code, _, err = run_cli(*evaluate[:-1], "0.2", *small)  # another evaluation
    assert_refused(code, err, "--state", "state.json holds the state of another")
    # Other data of the same shape: refused, naming the --dataset to pass.
    (x_train, y_train), (x_test, y_test) = load("digits", seed=1)
    other = tmp_path / "other.npz"
    np.savez(other, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    code, _, err = run_cli(*evaluate, "--dataset", str(other))
    assert_refused(code, err, "m.keras was trained on --dataset digits", "other.npz")
    assert "pass --dataset digits" in err
    # A model keras-adv did not save (no record) is evaluated on what is given.
    import keras

    keras.saving.load_model(model).save(tmp_path / "plain.keras")
    assert results_store.trained_on(str(tmp_path / "plain.keras")) is None
    code, _, err = run_cli(
        "evaluate", str(tmp_path / "plain.keras"), "--dataset", str(other),
        "--attacks", "fgsm", "--epsilons", "0.1", "--max-test-examples", "32",
        "--no-checks",
    )  # fmt: skip
    assert code == 0, err[-2000:]


@pytest.mark.slow
def test_train_reads_its_config_and_takes_zero_as_a_value(tmp_path):
    """--epsilon 0 (clean) and config keys must not fall back to the defaults."""
    config = tmp_path / "train.toml"
    config.write_text('epsilon = 0.0\nattack = "fgsm"\nepochs = 1\n')
    clean = tmp_path / "clean.keras"
    code, _, err = run_cli(
        "train", "--config", str(config), "--output", str(clean), "--quiet"
    )
    assert code == 0, err[-2000:]
    import keras

    assert type(keras.saving.load_model(clean)).__name__ != "AdversarialModel"
    robust = tmp_path / "robust.keras"
    code, _, err = run_cli(
        "train",
        "--config",
        str(config),
        "--epsilon",
        "0.05",
        "--output",
        str(robust),
        "--quiet",
    )
    assert code == 0, err[-2000:]
    loaded = keras.saving.load_model(robust)
    assert loaded.attack.epsilon == 0.05 and type(loaded.attack).__name__ == "FGSM"


def test_train_attack_flag_wins_over_a_config_train_attack(tmp_path):
    config = tmp_path / "train.toml"
    config.write_text('train_attack = "pgd7"\nepochs = 1\n')
    out = tmp_path / "fgsm.keras"
    code, _, err = run_cli(
        "train", "--config", str(config), "--attack", "fgsm",
        "--epsilon", "0.05", "--output", str(out), "--quiet",
    )  # fmt: skip
    assert code == 0, err[-2000:]
    import keras

    assert type(keras.saving.load_model(out).attack).__name__ == "FGSM"


def test_a_changed_dataset_at_the_same_path_is_named_as_such(tmp_path, monkeypatch):
    """The record keeps the absolute path; a relative --dataset naming the
    same file is that dataset, whose contents changed."""
    from keras_adv.experiments import cli

    monkeypatch.chdir(tmp_path)
    record = {"dataset": str(tmp_path / "d.npz"), "sha256": "ab" * 32}
    assert "its data now differ" in cli._other_data("m.keras", record, "d.npz")
    assert "pass --dataset" in cli._other_data("m.keras", record, "other.npz")
