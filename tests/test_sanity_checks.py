"""Each check fires on a planted failure, with its evidence."""

import keras
import numpy as np
import pytest

from keras_adv import PGD
from keras_adv import RobustnessWarning
from keras_adv import Square
from keras_adv import evaluate_robustness
from keras_adv.evaluation import sanity_checks
from tests.conftest import masked

# The planted failures warn by design; the tests read the checks instead.
pytestmark = pytest.mark.filterwarnings("ignore::keras_adv.RobustnessWarning")


@pytest.fixture(scope="module")
def images(digits_images):
    x, y = digits_images
    return x[:150], y[:150]


def _failed(result):
    return {check.name: check for check in result.failed_checks}


@pytest.mark.slow
def test_masked_gradients_are_caught(trained_image_model, images):
    """Zero input gradients: PGD cannot move, Square and noise still break."""
    model = masked(trained_image_model, (8, 8, 1))
    attacks = [PGD(0.15, steps=10, seed=0), Square(0.15, queries=200, seed=0)]
    with pytest.warns(RobustnessWarning, match="zero_gradients"):
        result = evaluate_robustness(
            model, images, epsilons=[0.1, 0.2], attacks=attacks, seed=0
        )
    failed = _failed(result)
    assert failed["zero_gradients"].evidence["zero_gradient_share"] == 1.0
    assert "black_box_not_stronger" in failed
    assert failed["black_box_not_stronger"].evidence["0.2"] > 10


@pytest.mark.skipif(
    keras.backend.backend() == "jax",
    reason="a layer drawing from a SeedGenerator at inference cannot be "
    "differentiated inside JAX's traced attack loops (its seed state would leak)",
)
def test_a_stochastic_model_is_caught(trained_image_model, images):
    class AlwaysNoisy(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.seed_generator = keras.random.SeedGenerator(0)

        def call(self, inputs):
            return inputs + keras.random.normal(
                keras.ops.shape(inputs), stddev=0.1, seed=self.seed_generator
            )

    model = keras.Sequential(
        [keras.Input((8, 8, 1)), AlwaysNoisy(), trained_image_model]
    )
    result = evaluate_robustness(
        model, images, epsilons=[0.1], attacks=[PGD(0.1, steps=5, seed=0)], seed=0
    )
    failed = _failed(result)
    assert "deterministic" in failed
    assert failed["deterministic"].evidence["max_output_difference"] > 0


def test_probability_outputs_are_caught(trained_image_model, images):
    model = keras.Sequential([trained_image_model, keras.layers.Softmax()])
    result = evaluate_robustness(
        model, images, epsilons=[0.1], attacks=[PGD(0.1, steps=5, seed=0)], seed=0
    )
    assert "outputs_are_logits" in _failed(result)


def test_a_weak_attack_is_caught_by_fgsm_and_by_doubling(trained_image_model, images):
    """Two tiny steps: weaker than FGSM, and doubling them still helps."""
    weak = PGD(0.1, steps=2, step_size=0.01, random_start=False)
    result = evaluate_robustness(
        trained_image_model, images, epsilons=[0.05, 0.1], attacks=[weak], seed=0
    )
    failed = _failed(result)
    assert "iterative_beats_fgsm" in failed
    assert "more_iterations_change_little" in failed
    doubled = failed["more_iterations_change_little"].evidence["pgd2"]
    assert doubled["doubled"] < doubled["accuracy"] - 0.02 and doubled["steps"] == 4
    # "before" is the table's own number (same run), not a fresh rerun
    eps = failed["more_iterations_change_little"].evidence["epsilon"]
    table = result.robust_accuracy["pgd2"][result.epsilons.index(eps)]
    assert doubled["accuracy"] == table
    # ... and, as its message says, the doubled attack joins the worst case
    assert result.worst_case[result.epsilons.index(eps)] <= doubled["doubled"]
    assert (
        "includes the doubled attack" in failed["more_iterations_change_little"].message
    )
    # ... and at a large epsilon two steps of 0.01 cannot reach chance.
    assert "chance_at_large_epsilon" in failed


def test_accuracy_rising_with_epsilon_is_caught():
    accuracy = {"PGD-10": [0.9, 0.5, 0.6], "worst case": [0.9, 0.5, 0.5]}
    check = sanity_checks.accuracy_falls_with_epsilon(
        accuracy, [0.0, 0.1, 0.2], tolerance=0.02
    )
    assert not check.passed and "PGD-10 0.500 -> 0.600" in check.message
    within = sanity_checks.accuracy_falls_with_epsilon(
        {"PGD-10": [0.5, 0.51]}, [0.1, 0.2], tolerance=0.02
    )
    assert within.passed


def test_checks_can_be_turned_off(trained_image_model, images):
    model = masked(trained_image_model, (8, 8, 1))
    result = evaluate_robustness(
        model, images, epsilons=[0.1], attacks=[PGD(0.1, steps=2)], checks=False
    )
    assert result.checks == []


class _Paired:
    """A probe set stub whose doubled attack leaves exactly `after` right."""

    def __init__(self, after):
        self.after = after

    def correct(self, model, attack, epsilon):
        return self.after.copy()


def _doubling(only_doubled, only_original, n=200):
    """The doubling check on `n` examples, half robust before, with planted pairs."""
    before = np.arange(n) < n // 2
    after = before.copy()
    after[:only_doubled] = False  # robust before, broken by the doubled attack
    after[n // 2 : n // 2 + only_original] = True  # the reverse
    worst = [before.copy()]
    check = sanity_checks.more_iterations_change_little(
        _Paired(after),
        None,
        {"pgd10": PGD(0.1, steps=10, seed=0)},
        [0.1],
        {"pgd10": [before]},
        worst,
        tolerance=0.02,
    )
    return check, worst[0]


@pytest.mark.parametrize(
    "only_doubled, only_original, fails",
    [
        (5, 0, False),  # 2.5% drop, but P(B >= 5 | 5 trials) = 1/32 > 0.01
        (12, 10, False),  # random starts breaking different examples: 1% drop
        (30, 2, True),  # 14% drop, p = 1.2e-7
        (4, 0, False),  # p = 1/16, and a 2% drop is within tolerance anyway
    ],
)
def test_the_doubling_check_fails_only_on_a_drop_the_examples_resolve(
    only_doubled, only_original, fails
):
    check, worst = _doubling(only_doubled, only_original)
    evidence = check.evidence["pgd10"]
    assert evidence["broken_only_by_doubled"] == only_doubled
    assert evidence["broken_only_by_original"] == only_original
    assert check.passed is not fails
    # a failed check puts the doubled attack into the worst case, a passed one not
    expected = 100 - only_doubled if fails else 100
    assert int(worst.sum()) == expected


def test_the_sign_test_is_the_binomial_tail():
    assert sanity_checks.sign_test(5, 0) == 1 / 32
    assert sanity_checks.sign_test(0, 7) == 1.0
    assert sanity_checks.sign_test(2, 1) == pytest.approx(4 / 8)
