"""`keras-adv reproduce`: recipes that load, build and run, and a report
with our numbers beside the paper's."""

import keras
import numpy as np
import pytest

from keras_adv.experiments import reproduce
from keras_adv.experiments import zoo
from keras_adv.experiments.cli_options import UsageError
from tests.conftest import assert_refused
from tests.conftest import run_cli

# The papers the bundled recipes reproduce (issue 15): at least these.
EXPECTED = {
    "fashion_mnist_pgd_at_croce2019",
    "mnist_fast_at_wong2020",
    "mnist_madry2018",
    "cifar10_fast_at_wong2020",
    "cifar10_trades_zhang2019",
}
# WideResNet-34-10 trains one step of TRADES in about a minute here: it runs
# on one backend; its layers run on every backend in test_zoo.py.
HEAVY = {"cifar10_trades_zhang2019"}

DIGITS_RECIPE = """
name = "digits, FGSM training (a test recipe)"
[paper]
title = "A test"
authors = "Nobody"
year = 2026
arxiv = "0000.00000"
[sweep]
dataset = "digits"
train_eps = [0.1]
attack_eps = [0.0, 0.1]
attacks = ["fgsm"]
train_attack = "fgsm"
epochs = 3
max_test_examples = 64
checks = false
[[published]]
metric = "clean_accuracy"
value = 0.9
[[published]]
metric = "robust_accuracy"
attack = "worst case"
epsilon = 0.1
value = 0.5
relation = "<="
note = "an upper bound"
"""


def test_the_bundled_recipes_are_there_and_load():
    assert EXPECTED <= set(reproduce.names())
    for key in reproduce.names():
        recipe = reproduce.load(key)
        settings = recipe.settings()
        assert settings.model in zoo.MODELS and recipe.published
        assert {"title", "authors", "year", "arxiv", "where"} <= set(recipe.paper)


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_each_recipe_trains_one_batch_on_random_data_of_its_shape(key):
    if key in HEAVY and keras.backend.backend() != "tensorflow":
        pytest.skip("one backend: a minute per run; its layers run in test_zoo")
    recipe = reproduce.load(key)
    model, record = reproduce.smoke_test(recipe, examples=2)
    assert record["epochs"] == 1
    shape = reproduce.EXAMPLE_SHAPES[recipe.settings().dataset]
    out = keras.ops.convert_to_numpy(model(np.zeros((1, *shape), "float32")))
    assert out.shape == (1, 10) and np.isfinite(out).all()
    assert model.optimizer.iterations.numpy() >= 1  # it took a training step


@pytest.mark.parametrize(
    "edit, says",
    [
        (
            ("epochs = 3", "epochs = 3\nlearning_rat = 0.1"),
            "unknown key(s) ['learning_rat']",
        ),
        (("value = 0.9", "value = 90.0"), "a fraction, not a percentage"),
        (('attack = "worst case"', 'attack = "pgd20"'), "not measured by its [sweep]"),
        (("train_eps = [0.1]", "train_eps = [0.0, 0.1]"), "must hold one epsilon"),
        (('train_attack = "fgsm"', 'train_attack = "nope"'), "train_attack in"),
        (("[paper]", "[papers]"), "unknown key(s) ['papers']"),
    ],
)
def test_a_bad_recipe_is_refused_naming_the_file_and_the_fix(tmp_path, edit, says):
    path = tmp_path / "bad.toml"
    path.write_text(DIGITS_RECIPE.replace(*edit))
    with pytest.raises(UsageError) as error:
        reproduce.load(str(path))
    assert says in str(error.value) and "bad.toml" in str(error.value)


def test_an_unknown_recipe_name_lists_the_recipes(tmp_path):
    code, _, err = run_cli("reproduce", "no_such_paper", cwd=tmp_path)
    assert_refused(code, err, "no recipe named 'no_such_paper'", "mnist_madry2018")


def test_list_names_every_bundled_recipe(tmp_path):
    code, out, _ = run_cli("reproduce", "--list", cwd=tmp_path)
    assert code == 0
    assert {line.split(":")[0] for line in out.strip().splitlines()} == set(
        reproduce.names()
    )


def test_the_report_puts_ours_beside_theirs_and_says_when_shortened(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(DIGITS_RECIPE)
    recipe = reproduce.load(str(path))
    results = {
        "settings": {**recipe.settings().__dict__, "train_epsilons": [0.1]},
        "data": {"test_examples": 450},
        "training": {"0.1": {"seconds": 90.0}},
        "cells": [
            {"train_epsilon": 0.1, "attack": "fgsm", "attack_epsilon": 0.0,
             "clean_accuracy": 0.93, "robust_accuracy": 0.93},
            {"train_epsilon": 0.1, "attack": "worst case", "attack_epsilon": 0.1,
             "clean_accuracy": 0.93, "robust_accuracy": 0.41},
        ],
    }  # fmt: skip
    text = reproduce.markdown(recipe, results, ["epochs 1 of the recipe's 3"])
    assert "| clean accuracy | 0.9300 | 0.9000 | +0.0300 |" in text
    assert (
        "| robust accuracy, worst case at eps 0.1 (an upper bound) | 0.4100 | "
        "<= 0.5000 | -0.0900 |"
    ) in text
    assert "Shortened run, not comparable to the paper**: epochs 1 of the" in text
    assert "evaluated on 64 test examples" in text and "1.5 minutes" in text
    assert "Shortened" not in reproduce.markdown(recipe, results, [])


@pytest.mark.slow
def test_reproduce_runs_a_recipe_end_to_end_and_resumes(tmp_path):
    (tmp_path / "r.toml").write_text(DIGITS_RECIPE)
    code, _, err = run_cli("reproduce", "r.toml", "--quiet", "--epochs", "1",
                           cwd=tmp_path)  # fmt: skip
    assert code == 0, err
    run = tmp_path / "runs" / "r"
    text = (run / "reproduction.md").read_text()
    assert (run / "report.md").exists() and (run / "results.json").exists()
    assert "Shortened run" in text and "epochs 1 of the recipe's 3" in text
    row = next(line for line in text.splitlines() if line.startswith("| clean"))
    ours = float(row.split("|")[2])
    assert 0.0 < ours <= 1.0
    before = (run / "results.json").read_text()
    assert run_cli("reproduce", "r.toml", "--quiet", "--epochs", "1",
                   cwd=tmp_path)[0] == 0  # fmt: skip
    assert (run / "results.json").read_text() == before  # resumed, not redone
