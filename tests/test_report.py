"""`report.py` renders what it is given: synthetic results, no training."""

import csv
import dataclasses
import json
import pathlib

from keras_adv.experiments import cli_options
from keras_adv.experiments.report import FIGURES
from keras_adv.experiments.report import markdown
from keras_adv.experiments.report import wilson
from keras_adv.experiments.report import write_report


def synthetic_results():
    train, attack_eps, attacks = [0.0, 0.1], [0.0, 0.05, 0.1], ["fgsm", "pgd20"]
    cells = [
        {
            "train_epsilon": t,
            "attack": a,
            "attack_epsilon": e,
            "clean_accuracy": 0.9,
            "robust_accuracy": round(0.9 - e * (5 - 20 * t), 4),
            "perturbation_linf": e,
            "perturbation_l2": 8 * e,
            "prediction_drift": e * 3,
            "kl": e,
            "flip_rate": e * 2,
        }
        for t in train
        for a in attacks
        for e in attack_eps
    ]
    settings = {
        "dataset": "digits",
        "train_epsilons": train,
        "attack_epsilons": attack_eps,
        "attacks": attacks,
        "train_attack": "pgd7",
        "objective": "madry",
        "epochs": 3,
        "max_test_examples": 100,
        "seed": 0,
        "batch_size": 64,
    }
    return {
        "settings": settings,
        "training": {"0": {"seconds": 1.5}, "0.1": {"seconds": 4.0}},
        "cells": cells,
    }


def test_report_files(tmp_path):
    results = synthetic_results()
    write_report(results, tmp_path)
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert len(rows) == 12 and rows[0]["attack"] == "fgsm"
    for name in FIGURES:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    text = (tmp_path / "report.md").read_text()
    assert "## Robust accuracy under `pgd20`" in text
    assert "| train eps 0.1 | 0.900 | 0.750 | 0.600 |" in text
    for name in FIGURES:
        assert f"({name})" in text


def test_missing_cells_show_as_dashes():
    results = synthetic_results()
    results["cells"] = results["cells"][:2]
    assert "| train eps 0.1 | - | - | - |" in markdown(results)


def test_report_shows_the_worst_case_and_the_checks(tmp_path):
    results = synthetic_results()
    results["cells"] += [
        {
            "train_epsilon": t,
            "attack": "worst case",
            "attack_epsilon": e,
            "robust_accuracy": 0.5,
            "clean_accuracy": 0.9,
        }
        for t in (0.0, 0.1)
        for e in (0.0, 0.05, 0.1)
    ]
    passed = {"name": "deterministic", "passed": True, "message": "ok", "evidence": {}}
    failed = {
        "name": "zero_gradients",
        "passed": False,
        "message": "12.0% of examples have an exactly zero input gradient",
        "evidence": {},
    }
    results["checks"] = [
        {"train_epsilon": 0.0, "checks": [passed, passed]},
        {"train_epsilon": 0.1, "checks": [passed, failed]},
    ]
    write_report(results, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "## Worst case over all attacks" in text
    assert "| train eps 0.1 | 0.500 | 0.500 | 0.500 |" in text
    assert "| 0 | all 2 passed |" in text
    assert "**zero_gradients**: 12.0% of examples" in text
    # The strength table still describes the last real attack, not the worst case.
    assert "## Attack strength vs defense effect (`pgd20`)" in text
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert sum(row["attack"] == "worst case" for row in rows) == 6


def test_the_report_states_its_examples_intervals_and_definitions(tmp_path):
    results = synthetic_results()
    results["data"] = {"test_examples": 450}
    results["settings"]["max_test_examples"] = 1000  # 450 used, not "up to 1000"
    results["cells"][4]["prediction_drift"] = 0.123456789
    text = markdown(results)
    assert "attacked on 450 test images" in text and "up to" not in text
    # Each accuracy with the wider half of its 95% Wilson interval for n = 450:
    # 0.75 -> (0.708, 0.788), so +-0.042; 0.9 -> (0.869, 0.924), +-0.031.
    assert "| train eps 0.1 | 0.900 ±0.031 | 0.750 ±0.042 | 0.600 ±0.046 |" in text
    for term in ("**drift**", "**KL**", "**flip rate**"):
        assert term in text
    write_report(results, tmp_path)
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert rows[4]["prediction_drift"] == "0.1235"  # rounded in the CSV


def test_wilson_interval_matches_the_formula():
    low, high = wilson(0.75, 450)
    assert (round(low, 4), round(high, 4)) == (0.708, 0.7878)  # by hand
    assert wilson(1.0, 10)[1] == 1.0 and wilson(0.0, 10)[0] == 0.0


def test_the_figures_name_what_they_show(tmp_path):
    import matplotlib.pyplot as plt

    from keras_adv.experiments.report import _heatmap
    from keras_adv.experiments.report import _strength_vs_effect

    results = synthetic_results()
    results["data"] = {"test_examples": 450}
    results["cells"] += [
        {"train_epsilon": t, "attack": "worst case", "attack_epsilon": e,
         "robust_accuracy": 0.5, "clean_accuracy": 0.9}
        for t in (0.0, 0.1) for e in (0.0, 0.05, 0.1)
    ]  # fmt: skip
    figure = _heatmap(results)
    heat, bar = figure.axes
    assert "worst case over fgsm, pgd20" in heat.get_title()
    assert "digits, 100 test images" in heat.get_title()
    assert heat.get_xlabel() == "attack epsilon (L-inf)"
    assert bar.get_ylabel().startswith("robust accuracy")
    plt.close(figure)
    figure = _strength_vs_effect(results)
    (axis,) = figure.axes
    # drift against the budget itself, and which way is better
    assert axis.get_xlabel().startswith("attack strength: the budget epsilon")
    assert any("stronger defense" in t.get_text() for t in axis.texts)
    assert list(axis.lines[0].get_xdata()) == [0.0, 0.05, 0.1]
    plt.close(figure)


def test_the_sample_report_is_a_demo_run_rendered_by_this_code():
    """docs/sample/ holds `make sample`'s output: its report must be what the
    report code makes of its results.json, from the demo's settings today."""
    sample = pathlib.Path(__file__).parents[1] / "docs" / "sample"
    results = json.loads((sample / "results.json").read_text())
    assert markdown(results) == (sample / "report.md").read_text()
    demo = dataclasses.asdict(cli_options.sweep_settings({}))
    assert results["settings"] == json.loads(json.dumps(demo))
    for name in FIGURES:
        assert (sample / name).read_bytes()[:4] == b"\x89PNG"
