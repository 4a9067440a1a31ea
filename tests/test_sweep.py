"""`run_sweep`: the grid, resuming after an interruption, refusing other settings."""

import json
import os

import pytest

from keras_adv.evaluation.probe import ProbeSet
from keras_adv.experiments.sweep import RESULTS
from keras_adv.experiments.sweep import SweepSettings
from keras_adv.experiments.sweep import run_sweep

TINY = dict(
    train_epsilons=(0.0, 0.1),
    attack_epsilons=(0.0, 0.1),
    attacks=("fgsm", "pgd3"),
    epochs=1,
    train_attack="fgsm",  # PGD-7 training costs time; one test trains with it
    max_test_examples=64,
    checks=False,  # the checks' extra attacks cost time; one test turns them on
)


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
def test_an_interrupted_sweep_resumes_without_redoing_cells(tmp_path):
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
    ]
    assert oct((tmp_path / RESULTS).stat().st_mode & 0o777) == oct(0o666 & ~umask())
    # the same cells as an uninterrupted sweep: pgd3's random starts in the
    # resumed cell do not depend on the cells run before it
    whole = run_sweep(SweepSettings(**TINY), tmp_path / "whole")
    key = lambda c: (c["train_epsilon"], c["attack"], c["attack_epsilon"])  # noqa: E731
    assert sorted(results["cells"], key=key) == sorted(whole["cells"], key=key)


@pytest.mark.slow
def test_other_settings_are_refused_unless_overwriting(tmp_path):
    run_sweep(SweepSettings(**TINY), tmp_path)
    other = SweepSettings(**{**TINY, "epochs": 2})
    with pytest.raises(ValueError, match="other settings.*--overwrite"):
        run_sweep(other, tmp_path)
    results = run_sweep(other, tmp_path, overwrite=True)
    assert results["settings"]["epochs"] == 2 and len(results["cells"]) == 8 + 4


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
