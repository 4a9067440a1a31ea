"""`run_sweep`: the grid, resuming after an interruption, refusing other
settings, and its units run anywhere: shards in parallel, Ray tasks."""

import json
import os
import shutil

import keras
import numpy as np
import pytest
from conftest import assert_refused
from conftest import end_session
from conftest import finish
from conftest import run_cli
from conftest import start_cli

from keras_adv.evaluation.probe import ProbeSet
from keras_adv.experiments import results_store
from keras_adv.experiments.sweep import RESULTS
from keras_adv.experiments.sweep import Shard
from keras_adv.experiments.sweep import SweepSettings
from keras_adv.experiments.sweep import backup_epoch
from keras_adv.experiments.sweep import run_sweep
from keras_adv.experiments.sweep import train_model

TINY = dict(
    train_epsilons=(0.0, 0.1),
    attack_epsilons=(0.0, 0.1),
    attacks=("fgsm", "pgd3"),
    epochs=1,
    train_attack="fgsm",  # PGD-7 training costs time; one test trains with it
    max_test_examples=64,
    checks=False,  # the checks' extra attacks cost time; one test turns them on
)
TINY_FLAGS = [  # TINY on the command line
    "--train-eps", "0", "0.1",
    "--attack-eps", "0", "0.1",
    "--attacks", "fgsm", "pgd3",
    "--epochs", "1",
    "--train-attack", "fgsm",
    "--max-test-examples", "64",
    "--no-checks",
]  # fmt: skip


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """TINY swept here, one unit after another, uninterrupted: its folder and
    results, the reference the other ways of running it must equal."""
    folder = tmp_path_factory.mktemp("serial")
    return folder, run_sweep(SweepSettings(**TINY), folder)


def _sorted_cells(results):
    key = lambda c: (c["train_epsilon"], c["attack"], c["attack_epsilon"])  # noqa: E731
    return sorted(results["cells"], key=key)


def assert_same_sweep(results, reference):
    """The same settings, data and cells (every number, every example's bit)."""
    for key in ("settings", "data", "model", "attack_configs"):
        assert results[key] == reference[key], key
    assert results["missing"] == [] and len(results["cells"]) == 8 + 4
    assert _sorted_cells(results) == _sorted_cells(reference)
    assert set(results["training"]) == set(reference["training"]) == {"0", "0.1"}


def umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


class Stop(Exception):
    pass


@pytest.mark.slow
def test_a_sweep_fills_its_grid_and_records_its_settings(tmp_path, monkeypatch):
    def no_second_clean_pass(self, model):
        raise AssertionError("the cells' own runs give the clean results")

    monkeypatch.setattr(ProbeSet, "clean_correct", no_second_clean_pass)
    settings = SweepSettings(**{**TINY, "checks": True, "train_attack": "pgd7"})
    results = run_sweep(settings, tmp_path)
    attack_cells = [c for c in results["cells"] if c["attack"] != "worst case"]
    assert len(attack_cells) == 2 * 2 * 2
    saved = json.loads((tmp_path / RESULTS).read_text())
    assert saved["cells"] == results["cells"]
    assert saved["settings"]["attacks"] == ["fgsm", "pgd3"]
    assert {"keras_adv", "keras", "backend", "numpy", "python"} <= set(
        saved["versions"]
    )
    assert saved["attack_configs"]["pgd3"]["steps"] == 3
    assert saved["attack_configs"]["pgd7"]["random_start"] is True  # training
    assert set(saved["training"]) == {"0", "0.1"}
    # each saved model carries the data it was trained on, as results.json has it
    for eps in ("0", "0.1"):
        path = tmp_path / "models" / f"train_eps_{eps}.keras"
        assert results_store.trained_on(str(path)) == saved["data"]
    for cell in attack_cells:
        if cell["attack_epsilon"] == 0:
            assert cell["robust_accuracy"] == cell["clean_accuracy"]
            assert cell["perturbation_linf"] == 0.0
        else:
            assert cell["perturbation_linf"] == pytest.approx(0.1, abs=1e-5)
            assert cell["robust_accuracy"] <= cell["clean_accuracy"]
    cells = {(c["train_epsilon"], c["attack"], c["attack_epsilon"]): c
             for c in results["cells"]}  # fmt: skip
    for train_eps in (0.0, 0.1):  # the worst case is at most every attack
        for eps in (0.0, 0.1):
            worst = cells[(train_eps, "worst case", eps)]["robust_accuracy"]
            each = [
                cells[(train_eps, a, eps)]["robust_accuracy"] for a in TINY["attacks"]
            ]
            assert worst <= min(each)
            clean = cells[(train_eps, "fgsm", eps)]["clean_accuracy"]
            assert cells[(train_eps, "worst case", eps)]["clean_accuracy"] == clean
    assert [entry["train_epsilon"] for entry in results["checks"]] == [0.0, 0.1]
    names = [check["name"] for check in results["checks"][0]["checks"]]
    assert "black_box_not_stronger" in names and len(names) == 8
    # the doubling check starts from the table's number, not from a rerun
    for entry in results["checks"]:
        (more,) = [c for c in entry["checks"] if c["name"].startswith("more_iter")]
        eps = more["evidence"]["epsilon"]
        table = cells[(entry["train_epsilon"], "pgd3", eps)]["robust_accuracy"]
        assert more["evidence"]["pgd3"]["accuracy"] == pytest.approx(table)


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_without_redoing_cells(tmp_path, serial):
    seen = []

    def interrupt_after_three(cell):
        seen.append(cell)
        if len(seen) == 3:
            raise Stop

    with pytest.raises(Stop):
        run_sweep(SweepSettings(**TINY), tmp_path, on_cell=interrupt_after_three)
    saved = json.loads((tmp_path / RESULTS).read_text())
    assert saved["cells"] == seen  # every finished cell was written
    trained = dict(saved["training"])

    again = []
    results = run_sweep(SweepSettings(**TINY), tmp_path, on_cell=again.append)
    assert len(again) == 8 - 3 and len(results["cells"]) == 8 + 4  # + worst cases
    assert results["cells"][:3] == seen
    assert results["training"]["0"] == trained["0"]  # the model was not retrained
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert files == [  # no temporary file left behind
        ".keras-adv.lock",
        "models",
        "models/train_eps_0.1.keras",
        "models/train_eps_0.keras",
        "results.json",
        "units",
        "units/train_eps_0.1.json",
        "units/train_eps_0.1.lock",
        "units/train_eps_0.json",
        "units/train_eps_0.lock",
    ]
    assert oct((tmp_path / RESULTS).stat().st_mode & 0o777) == oct(0o666 & ~umask())
    # the same cells as an uninterrupted sweep: pgd3's random starts in the
    # resumed cell do not depend on the cells run before it
    assert _sorted_cells(results) == _sorted_cells(serial[1])


def _state(model):
    """Weights, optimizer state (its step count too) and the attack's seed."""
    variables = list(model.weights) + list(model.optimizer.variables)
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def test_an_interrupted_training_resumes_after_its_last_epoch(tmp_path):
    """A sweep's training backs up every epoch (Keras's BackupAndRestore):
    killed in epoch 3 of 4, the rerun starts epoch 3 from the state epoch 2
    ended with (weights, optimizer, attack seed), not from scratch."""
    from keras_adv.experiments.data import load

    data = load("digits", seed=0)
    settings = SweepSettings(**{**TINY, "epochs": 4})
    backup = str(tmp_path / "train_eps_0.1.keras.backup")
    kept = {}

    class KilledInEpochThree(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                kept["after two"] = _state(self.model)

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise Stop

    with pytest.raises(Stop):
        train_model(
            settings, 0.1, data, callbacks=[KilledInEpochThree()], backup_dir=backup
        )
    assert backup_epoch(backup) == 2
    epochs = []

    class Watch(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            kept["resumed from"] = _state(self.model)

        def on_epoch_begin(self, epoch, logs=None):
            epochs.append(epoch)

    _, record = train_model(settings, 0.1, data, callbacks=[Watch()], backup_dir=backup)
    assert epochs == [2, 3]  # only the epochs not done
    assert record["epochs"] == 4 and record["resumed_at_epoch"] == 2
    for saved, restored in zip(kept["after two"], kept["resumed from"], strict=True):
        np.testing.assert_array_equal(saved, restored)
    assert backup_epoch(str(tmp_path / "none")) == 0


@pytest.mark.slow
def test_a_resumed_sweep_gives_the_uninterrupted_checks(tmp_path):
    """Interrupted inside the second model's cells, resumed: the sanity checks
    (paired with the table's own results) and the worst case are those of an
    uninterrupted sweep, evidence and all."""
    settings = SweepSettings(**{**TINY, "checks": True})
    whole = run_sweep(settings, tmp_path / "whole")
    seen = []

    def interrupt_after_five(cell):
        seen.append(cell)
        if len(seen) == 5:
            raise Stop

    with pytest.raises(Stop):
        run_sweep(settings, tmp_path / "cut", on_cell=interrupt_after_five)
    resumed = run_sweep(settings, tmp_path / "cut")
    assert resumed["checks"] == whole["checks"]
    assert [c["name"] for c in resumed["checks"][1]["checks"]][-2:] == [
        "more_iterations_change_little", "black_box_not_stronger"
    ]  # fmt: skip
    assert _sorted_cells(resumed) == _sorted_cells(whole)  # worst cases included


@pytest.mark.slow
def test_other_settings_are_refused_unless_overwriting(tmp_path, serial):
    shutil.copytree(serial[0], tmp_path, dirs_exist_ok=True)
    other = SweepSettings(**{**TINY, "epochs": 2})
    with pytest.raises(ValueError, match="other settings.*--overwrite"):
        run_sweep(other, tmp_path)
    results = run_sweep(other, tmp_path, overwrite=True)
    assert results["settings"]["epochs"] == 2 and len(results["cells"]) == 8 + 4
    assert all(e["epochs"] == 2 for e in results["training"].values())


@pytest.mark.slow
def test_shards_in_parallel_then_report_give_the_serial_cells(tmp_path, serial):
    flags = ["sweep", "--name", "sharded", *TINY_FLAGS]
    array_task = {  # task 8 of an array numbered from 7: share 1 of 2
        "SLURM_ARRAY_TASK_ID": "8",
        "SLURM_ARRAY_TASK_MIN": "7",
        "SLURM_ARRAY_TASK_COUNT": "2",
    }
    shards = [
        start_cli(*flags, "--shard", "0/2", cwd=tmp_path),
        start_cli(*flags, "--shard", "slurm", cwd=tmp_path, env=array_task),
    ]
    try:
        owners = ("train eps 0 |", "train eps 0.1 |")  # each shard's unit
        for shard, own in zip(shards, owners, strict=True):
            code, out, err = finish(shard, timeout=600)
            assert code == 0, err
            cells = [line for line in out.splitlines() if line.startswith("train eps")]
            # each computed its own share: its unit's 4 cells, none of the other's
            assert len(cells) == 4 and all(c.startswith(own) for c in cells), out
    finally:
        for shard in shards:
            end_session(shard)
    folder = tmp_path / "runs" / "sharded"
    code, out, err = run_cli("report", str(folder))
    assert code == 0 and "missing" not in out, err
    assert_same_sweep(json.loads((folder / RESULTS).read_text()), serial[1])
    for name in ("report.md", "results.csv", "heatmap.png"):
        assert (folder / name).stat().st_size > 0
    code, out, _ = run_cli("sweep", "--name", "sharded", *TINY_FLAGS, "--list",
                           "--shard", "1/2", cwd=tmp_path)  # fmt: skip
    assert code == 0 and out == "unit 2/2 | train_eps_0.1 | done\n"
    code, out, _ = run_cli("sweep", "--name", "sharded", *TINY_FLAGS, "--list",
                           "--epochs", "2", cwd=tmp_path)  # fmt: skip
    assert code == 0 and out.count("other settings") == 2


@pytest.mark.slow
@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="the executor is backend-independent; on JAX (not the default "
    "backend) the test also shows the tasks use the driver's backend",
)
def test_a_ray_sweep_gives_the_serial_cells(tmp_path, serial):
    flags = ["sweep", "--name", "ray", *TINY_FLAGS, "--executor", "ray"]
    process = start_cli(*flags, "--cpus-per-model", "1", cwd=tmp_path)
    try:  # a local Ray instance, started and shut down by the command
        code, out, err = finish(process, timeout=600)
    finally:
        end_session(process)
    assert code == 0, err
    assert "model 1/2 (train eps 0) | epoch 1/1" in out  # the tasks' progress
    assert "train eps 0.1 | pgd3 eps 0.1 | robust acc" in out  # cells
    folder = tmp_path / "runs" / "ray"
    results = json.loads((folder / RESULTS).read_text())
    assert_same_sweep(results, serial[1])
    backends = {e["versions"]["backend"] for e in results["training"].values()}
    assert backends == {"jax"}
    assert (folder / "report.md").exists()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"train_epsilons": ()}, "train_epsilons"),
        ({"attack_epsilons": (0.1, -0.1)}, "attack_epsilons"),
        ({"attacks": ("cw",)}, "pgd<steps>"),
        ({"epochs": 0}, "epochs"),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SweepSettings(**kwargs)


@pytest.mark.parametrize(
    "text, environ, index, count",
    [
        ("0/1", {}, 0, 1),
        ("3/4", {}, 3, 4),
        ("slurm", {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "6"}, 5, 6),
        (
            "slurm",
            {
                "SLURM_ARRAY_TASK_ID": "3",
                "SLURM_ARRAY_TASK_MIN": "1",
                "SLURM_ARRAY_TASK_COUNT": "3",
            },
            2,
            3,
        ),
    ],
)
def test_shards_from_text_and_from_a_slurm_array(text, environ, index, count):
    assert Shard.parse(text, environ) == Shard(index, count)


@pytest.mark.parametrize(
    "text, environ, match",
    [
        ("4/4", {}, "from 0 to count - 1"),
        ("1/0", {}, "count"),
        ("half", {}, "I/N"),
        ("slurm", {}, "SLURM_ARRAY_TASK_ID.*not set"),
    ],
)
def test_bad_shards_are_refused(text, environ, match):
    with pytest.raises(ValueError, match=match):
        Shard.parse(text, environ)


def test_shards_split_the_units_between_them_without_overlap():
    units = [0.0, 0.01, 0.02, 0.05, 0.1]
    shares = [Shard(i, 3).pick(units) for i in range(3)]
    assert shares == [[0.0, 0.05], [0.01, 0.1], [0.02]]
    assert sorted(sum(shares, [])) == units


@pytest.mark.parametrize(
    "flags, fragments",
    [
        (["--shard", "2/2"], ["from 0 to count - 1", "2/2"]),
        (["--shard", "x"], ["--shard must be I/N", "'x'"]),
        (["--shard", "slurm"], ["SLURM_ARRAY_TASK_ID"]),
        (["--address", "auto"], ["--address apply to --executor ray only"]),
        (["--executor", "ray", "--cpus-per-model", "0"], ["--cpus-per-model"]),
    ],
)
def test_bad_scale_flags_are_refused_before_any_work(tmp_path, monkeypatch,
                                                      flags, fragments):  # fmt: skip
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    code, _, err = run_cli("sweep", *flags, *TINY_FLAGS, cwd=tmp_path)
    assert_refused(code, err, *fragments)
    assert not any(tmp_path.iterdir())


def test_report_needs_a_sweep_folder(tmp_path):
    code, _, err = run_cli("report", str(tmp_path))
    assert_refused(code, err, str(tmp_path), "no results.json")


@pytest.mark.slow
def test_a_folder_from_before_units_resumes_without_recomputing(
    tmp_path, serial, monkeypatch
):
    from keras_adv.experiments import sweep

    shutil.copytree(serial[0], tmp_path, dirs_exist_ok=True)
    shutil.rmtree(tmp_path / "units")  # everything in results.json, as before
    old = json.loads((tmp_path / RESULTS).read_text())
    del old["missing"]
    # interrupted after unit 0.1's last cell, before its worst case
    old["checks"] = [e for e in old["checks"] if e["train_epsilon"] == 0.0]
    old["cells"] = [
        c
        for c in old["cells"]
        if not (c["train_epsilon"] == 0.1 and c["attack"] == "worst case")
    ]
    (tmp_path / RESULTS).write_text(json.dumps(old))

    def no_attack_again(*args, **kwargs):
        raise AssertionError("a cell of the old folder was computed again")

    monkeypatch.setattr(sweep, "train_model", no_attack_again)
    monkeypatch.setattr(ProbeSet, "run", no_attack_again)
    results = run_sweep(SweepSettings(**TINY), tmp_path)
    assert_same_sweep(results, serial[1])
    assert sorted(p.name for p in (tmp_path / "units").glob("*.json")) == [
        "train_eps_0.1.json",
        "train_eps_0.json",
    ]
