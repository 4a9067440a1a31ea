import json
import warnings

import numpy as np
import pytest

from keras_adv import APGD
from keras_adv import FGSM
from keras_adv import MIM
from keras_adv import PGD
from keras_adv import RobustnessWarning
from keras_adv import Square
from keras_adv import autoattack
from keras_adv import evaluate_robustness
from keras_adv import sanity_checks


@pytest.fixture(scope="module")
def images(digits_images):
    x, y = digits_images
    return x[:200], y[:200]


def test_worst_case_is_the_per_example_and_over_attacks(trained_image_model, images):
    """An example is robust only if every attack leaves it right."""
    x, y = images
    model = trained_image_model
    attacks = {"fgsm": FGSM(0.1), "pgd": PGD(0.1, steps=10, seed=0)}
    result = evaluate_robustness(
        model, (x, y), epsilons=[0.1, 0.0], attacks=attacks, checks=False
    )
    assert result.epsilons == [0.0, 0.1]  # sorted
    clean = np.argmax(model.predict(x, verbose=0), 1) == y
    assert result.clean_accuracy == pytest.approx(clean.mean())
    assert result.robust_accuracy["fgsm"][0] == pytest.approx(clean.mean())
    # Recompute the worst case from the same attacks with the same seeds.
    fgsm_ok = np.argmax(model.predict(FGSM(0.1).generate(model, x, y), verbose=0), 1)
    pgd_adv = PGD(0.1, steps=10, seed=0).generate(model, x, y, batch_size=256)
    pgd_ok = np.argmax(model.predict(pgd_adv, verbose=0), 1)
    expected = np.mean(clean & (fgsm_ok == y) & (pgd_ok == y))
    assert result.worst_case[1] == pytest.approx(expected)
    assert result.worst_case[1] <= min(result.robust_accuracy["pgd"][1], 1.0)
    assert result.worst_case[1] < result.robust_accuracy["fgsm"][1]


def test_records_hyperparameters_and_serializes(trained_image_model, images):
    result = evaluate_robustness(
        trained_image_model,
        images,
        epsilons=0.05,
        attacks=[PGD(0.3, steps=7, seed=0), PGD(0.3, steps=3, seed=0)],
        checks=False,
    )
    assert set(result.attacks) == {"pgd7", "pgd3"}
    assert result.attacks["pgd7"]["steps"] == 7
    assert result.attacks["pgd7"]["epsilon"] == "per column"
    assert json.loads(json.dumps(result.to_dict()))["num_examples"] == 200


def test_duplicate_names_get_a_suffix(trained_image_model, images):
    result = evaluate_robustness(
        trained_image_model,
        images,
        epsilons=[0.05],
        attacks=[FGSM(0.1), FGSM(0.1, random_start=True, seed=1)],
        checks=False,
    )
    assert list(result.robust_accuracy) == ["fgsm", "fgsm#2"]


def test_attacks_may_be_given_by_name(trained_image_model, images):
    by_name = evaluate_robustness(
        trained_image_model,
        images,
        epsilons=[0.05],
        attacks=["fgsm", "PGD-3"],
        checks=False,
        seed=0,
    )
    built = evaluate_robustness(
        trained_image_model,
        images,
        epsilons=[0.05],
        attacks=[FGSM(0.1), PGD(0.1, steps=3, seed=0)],
        checks=False,
    )
    assert by_name.robust_accuracy == built.robust_accuracy
    assert list(by_name.robust_accuracy) == ["fgsm", "pgd3"]


def test_autoattack_preset_is_named_and_configured():
    attacks = autoattack(0.03, seed=0)
    assert list(attacks) == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert attacks["apgd-ce"].steps == 100 and attacks["apgd-ce"].loss == "ce"
    assert attacks["apgd-t"].target_classes == 9 and attacks["apgd-t"].steps == 100
    assert attacks["fab-t"].target_classes == 9 and attacks["fab-t"].steps == 100
    assert attacks["square"].queries == 5000 and attacks["square"].p_init == 0.8
    l2 = autoattack(0.5, norm="l2")
    assert list(l2) == ["apgd-ce-l2", "apgd-t-l2", "fab-t-l2", "square-l2"]
    assert l2["fab-t-l2"].steps == 100 and l2["square-l2"].queries == 5000


@pytest.mark.slow
def test_the_autoattack_preset_runs_end_to_end(trained_image_model, images):
    x, y = images
    result = evaluate_robustness(
        trained_image_model, (x[:64], y[:64]), epsilons=[0.1], checks=False, seed=0
    )
    assert list(result.robust_accuracy) == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert result.cascade  # AutoAttack's way: each attack on the survivors
    rows = [v[0] for v in result.robust_accuracy.values()]
    assert rows == sorted(rows, reverse=True)  # cumulative, so never rising
    assert result.worst_case[0] == rows[-1]


@pytest.mark.slow
def test_the_l2_set_is_never_weaker_than_its_members(trained_image_model, images):
    """AutoAttack's four on the L2 ball, each on every example: the worst
    case is at or below every member's robust accuracy; in the cascade the
    rows are cumulative."""
    x, y = images[0][:64], images[1][:64]
    attacks = autoattack(1.0, norm="l2", seed=0)
    attacks["fab-t-l2"] = attacks["fab-t-l2"].clone(steps=20, target_classes=3)
    attacks["apgd-t-l2"] = attacks["apgd-t-l2"].clone(steps=20, target_classes=3)
    attacks["square-l2"] = attacks["square-l2"].clone(queries=300)
    attacks["apgd-ce-l2"] = attacks["apgd-ce-l2"].clone(steps=20)
    kwargs = dict(epsilons=[0.5, 1.0], attacks=attacks, checks=False, seed=0)
    full = evaluate_robustness(trained_image_model, (x, y), cascade=False, **kwargs)
    assert list(full.robust_accuracy) == [
        "apgd-ce-l2",
        "apgd-t-l2",
        "fab-t-l2",
        "square-l2",
    ]
    for column in range(2):
        rows = [row[column] for row in full.robust_accuracy.values()]
        assert full.worst_case[column] <= min(rows)
    assert full.worst_case[1] < full.clean_accuracy - 0.2
    cascaded = evaluate_robustness(trained_image_model, (x, y), cascade=True, **kwargs)
    rows = [row[1] for row in cascaded.robust_accuracy.values()]
    assert rows == sorted(rows, reverse=True) and cascaded.worst_case[1] == rows[-1]


def test_the_cascade_gives_the_worst_case_of_all_on_all_for_less(
    trained_image_model, images, monkeypatch
):
    """Deterministic attacks (no random start): the cascade's worst case and
    its cumulative rows equal those of every attack on every example, and
    each attack ran only on the examples still robust."""
    from keras_adv.evaluation.probe import ProbeSet

    x, y = images[0][:96], images[1][:96]
    attacks = {
        "fgsm": FGSM(0.1),
        "pgd": PGD(0.1, steps=5, random_start=False),
        "mim": MIM(0.1, steps=5),
    }
    full = evaluate_robustness(
        trained_image_model, (x, y), epsilons=[0.05, 0.1], attacks=attacks,
        checks=False, batch_size=32,
    )  # fmt: skip
    attacked = []
    correct_among = ProbeSet.correct_among

    def counting(self, model, attack, epsilon, among):
        attacked.append((attack, epsilon, int(among.sum())))
        return correct_among(self, model, attack, epsilon, among)

    monkeypatch.setattr(ProbeSet, "correct_among", counting)
    cascaded = evaluate_robustness(
        trained_image_model, (x, y), epsilons=[0.05, 0.1], attacks=attacks,
        checks=False, batch_size=32, cascade=True,
    )  # fmt: skip
    assert cascaded.cascade and not full.cascade
    np.testing.assert_allclose(cascaded.worst_case, full.worst_case)
    names = list(attacks)
    for column, eps in enumerate([0.05, 0.1]):
        survivors = full.clean_accuracy
        for name in names:  # cumulative: the AND of the full rows so far
            before = len(x) * survivors
            seen = [n for a, e, n in attacked if a is attacks[name] and e == eps]
            assert seen == [round(before)]  # it ran on the survivors only
            cumulative = cascaded.robust_accuracy[name][column]
            assert cumulative <= full.robust_accuracy[name][column] + 1e-9
            survivors = cumulative
        assert survivors == full.worst_case[column]
    assert sum(n for *_, n in attacked) < 3 * 2 * len(x)  # it saved work


def test_cascade_must_be_a_bool(trained_image_model, images):
    with pytest.raises(ValueError, match="cascade"):
        evaluate_robustness(
            trained_image_model, (images[0][:8], images[1][:8]), epsilons=[0.1],
            attacks=[FGSM(0.1)], checks=False, cascade="yes",
        )  # fmt: skip


@pytest.mark.slow
def test_checks_pass_on_a_properly_trained_model(trained_image_model, images):
    """A trained logits model evaluated with strong attacks raises no warning."""
    x, y = images
    attacks = [
        PGD(0.1, steps=20, seed=0),
        APGD(0.1, steps=20, seed=0),
        Square(0.1, queries=200, seed=0),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RobustnessWarning)
        result = evaluate_robustness(
            trained_image_model,
            (x, y),
            epsilons=[0.0, 0.05, 0.1, 0.2],
            attacks=attacks,
            seed=0,
        )
    assert [c.name for c in result.checks] == [
        "outputs_are_logits",
        "deterministic",
        "zero_gradients",
        "chance_at_large_epsilon",
        "accuracy_falls_with_epsilon",
        "iterative_beats_fgsm",
        "more_iterations_change_little",
        "black_box_not_stronger",
    ]
    assert result.failed_checks == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epsilons": [-0.1]}, "epsilons"),
        ({"epsilons": []}, "epsilons"),
        ({"epsilons": [0.1], "attacks": "strong"}, "attacks"),
        ({"epsilons": [0.1], "attacks": []}, "attacks"),
        ({"epsilons": [0.1], "attacks": ["pgd"]}, "attacks"),
        ({"epsilons": [0.1], "tolerance": -1.0}, "tolerance"),
    ],
)
def test_bad_arguments_raise(trained_image_model, images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        evaluate_robustness(trained_image_model, images, **kwargs)


def test_rejects_what_is_not_a_model(images):
    with pytest.raises(ValueError, match="keras.Model"):
        evaluate_robustness(lambda x: x, images, epsilons=[0.1])


def test_verbose_says_each_attack_run_with_its_place(
    trained_image_model, images, capsys
):
    x, y = images
    result = evaluate_robustness(
        trained_image_model, (x[:32], y[:32]), epsilons=[0, 0.05, 0.1],
        attacks=["fgsm", "pgd3"], checks=False, verbose=1,
    )  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    # one line per attack and nonzero budget, in order, with its accuracy
    assert [line.split(" | ")[0] for line in lines] == [
        "fgsm eps 0.05", "fgsm eps 0.1", "pgd3 eps 0.05", "pgd3 eps 0.1"
    ]  # fmt: skip
    assert (
        lines[3].split(" | ")[1]
        == f"robust acc {result.robust_accuracy['pgd3'][2]:.3f}"
    )
    assert [line.split(" | ")[2] for line in lines] == [
        "attack 1/4", "attack 2/4", "attack 3/4", "attack 4/4"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="verbose"):
        evaluate_robustness(trained_image_model, (x, y), epsilons=[0.1], verbose=2)


def test_an_interrupted_evaluation_resumes_from_its_state(
    trained_image_model, images, tmp_path, monkeypatch
):
    from keras import ops

    from keras_adv.evaluation.probe import ProbeSet

    x, y = images[0][:48], images[1][:48]

    def evaluate(path):
        attacks = {"fgsm": FGSM(0.1), "pgd3": PGD(0.1, steps=3, seed=5)}
        result = evaluate_robustness(
            trained_image_model, (x, y), epsilons=[0, 0.05, 0.1], attacks=attacks,
            checks=False, state_path=path,
        )  # fmt: skip
        return result, ops.convert_to_numpy(attacks["pgd3"].seed_generator.state)

    whole, whole_random = evaluate(tmp_path / "whole.json")
    run, calls = ProbeSet.run, []

    def interrupted(self, *args, **kwargs):
        calls.append(kwargs.get("epsilon"))
        if len(calls) == 4:  # fgsm at both budgets and pgd3 at 0.05 are done
            raise KeyboardInterrupt
        return run(self, *args, **kwargs)

    monkeypatch.setattr(ProbeSet, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        evaluate(tmp_path / "cut.json")
    calls.clear()
    resumed, resumed_random = evaluate(tmp_path / "cut.json")
    assert calls == [0.1]  # only pgd3 at 0.1 ran again
    assert resumed.robust_accuracy == whole.robust_accuracy
    assert resumed.worst_case == whole.worst_case
    assert resumed.clean_accuracy == whole.clean_accuracy
    # pgd3 went on from its saved random state, as the uninterrupted run did
    np.testing.assert_array_equal(resumed_random, whole_random)
    # another evaluation's state is refused, not overwritten
    before = (tmp_path / "cut.json").read_text()
    with pytest.raises(ValueError, match="cut.json holds the state of another"):
        evaluate_robustness(
            trained_image_model, (x, y), epsilons=[0.2], attacks=["fgsm"],
            checks=False, state_path=tmp_path / "cut.json",
        )  # fmt: skip
    assert (tmp_path / "cut.json").read_text() == before


def test_an_interrupted_cascade_resumes_to_the_same_result(
    trained_image_model, images, tmp_path, monkeypatch
):
    from keras_adv.evaluation.probe import ProbeSet

    x, y = images[0][:48], images[1][:48]

    def evaluate(path):
        attacks = {"pgd3": PGD(0.1, steps=3, seed=5), "fgsm": FGSM(0.1)}
        return evaluate_robustness(
            trained_image_model, (x, y), epsilons=[0.05, 0.1], attacks=attacks,
            checks=False, state_path=path, cascade=True,
        )  # fmt: skip

    whole = evaluate(tmp_path / "whole.json")
    among, calls = ProbeSet.correct_among, []

    def interrupted(self, *args):
        calls.append(args[2])
        if len(calls) == 3:  # the 0.05 budget is done; stops in pgd3 at 0.1
            raise KeyboardInterrupt
        return among(self, *args)

    monkeypatch.setattr(ProbeSet, "correct_among", interrupted)
    with pytest.raises(KeyboardInterrupt):
        evaluate(tmp_path / "cut.json")
    calls.clear()
    resumed = evaluate(tmp_path / "cut.json")
    assert calls == [0.1, 0.1]  # pgd3 and fgsm at 0.1, nothing at 0.05
    assert resumed.robust_accuracy == whole.robust_accuracy
    assert resumed.worst_case == whole.worst_case


def test_robustbench_fields_come_from_the_worst_case():
    from keras_adv import RobustnessResult

    names = ["apgd-ce", "apgd-t", "fab-t", "square"]
    result = RobustnessResult(
        epsilons=[0.0, 8 / 255],
        clean_accuracy=0.87114,
        robust_accuracy={
            "apgd-ce": [0.87114, 0.6],
            "apgd-t": [0.87114, 0.56],
            "fab-t": [0.87114, 0.58],
            "square": [0.87114, 0.7],
        },  # fmt: skip
        worst_case=[0.87114, 0.5492],
        attacks={n: {"norm": "linf"} for n in names},
        checks=[],
        num_examples=1000,
    )
    entry = result.to_robustbench(8 / 255, "cifar10", name="Mine", venue="arXiv")
    assert entry["clean_acc"] == "87.11" and entry["autoattack_acc"] == "54.92"
    assert entry["threat_model"] == "Linf" and entry["eps"] == 8 / 255
    assert entry["n_examples"] == 1000 and entry["dataset"] == "cifar10"
    assert entry["name"] == "Mine" and entry["link"] is None
    assert "apgd-ce, apgd-t, fab-t, square on 1000" in entry["footnote"]
    json.dumps(entry)  # JSON-ready
    with pytest.raises(ValueError, match="evaluated budgets"):
        result.to_robustbench(0.1, "cifar10")
    with pytest.raises(ValueError, match="Unknown RobustBench fields"):
        result.to_robustbench(8 / 255, "cifar10", model="x")
    result.robust_accuracy = {"pgd20": [0.87, 0.6]}
    result.attacks = {"pgd20": {"norm": "linf"}}
    missing = "missing \\['apgd-ce', 'apgd-t', 'fab-t', 'square'\\]"
    with pytest.raises(ValueError, match=missing):
        result.to_robustbench(8 / 255, "cifar10")
    # L2: the same four attacks, on the L2 ball; APGD alone is not enough
    result.robust_accuracy = {"apgd-ce-l2": [0.87, 0.6], "apgd-t-l2": [0.87, 0.5]}
    result.attacks = {name: {"norm": "l2"} for name in result.robust_accuracy}
    with pytest.raises(ValueError, match="missing \\['fab-t-l2', 'square-l2'\\]"):
        result.to_robustbench(8 / 255, "cifar10")
    result.robust_accuracy |= {"fab-t-l2": [0.87, 0.55], "square-l2": [0.87, 0.7]}
    result.attacks = {name: {"norm": "l2"} for name in result.robust_accuracy}
    entry = result.to_robustbench(8 / 255, "cifar10")
    assert entry["threat_model"] == "L2" and entry["footnote"].endswith("points.")


def test_a_state_path_that_cannot_be_written_is_refused_before_any_attack(
    trained_image_model, images, tmp_path, monkeypatch
):
    from keras_adv.evaluation.probe import ProbeSet
    from keras_adv.evaluation.state import StateFileError

    def no_attack(*args, **kwargs):
        raise AssertionError("an attack ran before the state path was checked")

    monkeypatch.setattr(ProbeSet, "run", no_attack)
    x, y = images[0][:8], images[1][:8]
    for bad in (tmp_path / "missing" / "state.json", tmp_path):
        with pytest.raises(StateFileError, match="writable folder"):
            evaluate_robustness(
                trained_image_model, (x, y), epsilons=[0.1], attacks=["fgsm"],
                checks=False, state_path=bad,
            )  # fmt: skip
    with pytest.raises(ValueError, match="state_path"):
        evaluate_robustness(
            trained_image_model, (x, y), epsilons=[0.1], attacks=["fgsm"],
            checks=False, state_path=5,
        )  # fmt: skip


def test_correct_among_attacks_only_the_chosen_examples(
    trained_image_model, images, monkeypatch
):
    from keras_adv.evaluation.probe import ProbeSet

    x, y = images[0][:70], images[1][:70]
    probe = ProbeSet((x, y), max_examples=70, batch_size=32)
    attack = PGD(0.1, steps=3, random_start=False)
    everyone = probe.correct(trained_image_model, attack, 0.1)
    shapes = []
    function = ProbeSet._function

    def recording(self, model, attack, metrics):
        run = function(self, model, attack, metrics)

        def call(x, y, budget):
            shapes.append(int(x.shape[0]))
            return run(x, y, budget)

        return call

    monkeypatch.setattr(ProbeSet, "_function", recording)
    among = np.arange(70) % 3 == 0  # 24 of them
    result = probe.correct_among(trained_image_model, attack, 0.1, among)
    assert shapes == [32]  # one call, padded to the compiled batch shape
    np.testing.assert_array_equal(result[among], everyone[among])
    assert not result[~among].any()
    shapes.clear()
    nobody = probe.correct_among(trained_image_model, attack, 0.1, np.zeros(70, bool))
    assert shapes == [] and not nobody.any()


def noisy_model():
    """Gaussian noise at inference too: a randomized defense."""
    import keras

    class Noise(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.seed_generator = keras.random.SeedGenerator(1)

        def call(self, x):
            noise = keras.random.normal(
                keras.ops.shape(x), stddev=0.3, seed=self.seed_generator
            )
            return x + noise

    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    return keras.Model(inputs, keras.layers.Dense(3)(Noise()(inputs)))


@pytest.mark.slow
def test_autoattack_rand_attacks_a_randomized_model_with_eot():
    import keras

    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (32, 6)).astype("float32"), np.arange(32) % 3
    model = noisy_model()
    if keras.backend.backend() == "jax":
        with pytest.raises(
            ValueError, match="random at inference.*tensorflow or torch"
        ):
            evaluate_robustness(model, (x, y), epsilons=[0.1], checks=False)
        return
    result = evaluate_robustness(
        model, (x, y), epsilons=[0.1], attacks="autoattack-rand", seed=0,
        checks=False,
    )  # fmt: skip
    assert list(result.robust_accuracy) == ["apgd-ce-eot20", "apgd-dlr-eot20"]
    assert result.cascade and result.worst_case[0] < result.clean_accuracy
    from keras_adv.evaluation.probe import ProbeSet

    probe = ProbeSet((x, y))
    plain = sanity_checks.deterministic(probe, model, {"pgd": PGD(0.1)})
    assert not plain.passed  # one-draw gradients on a random model: flagged
    with_eot = sanity_checks.deterministic(
        probe, model, autoattack(0.1, version="rand")
    )
    assert with_eot.passed and "EOT" in with_eot.message


@pytest.mark.slow
def test_autoattack_rand_on_a_deterministic_model_says_it_is_wasted(
    trained_image_model, images
):
    x, y = images[0][:8], images[1][:8]
    with pytest.warns(RobustnessWarning, match="deterministic at inference"):
        evaluate_robustness(
            trained_image_model, (x, y), epsilons=[0.1], attacks="autoattack-rand",
            checks=False,
        )  # fmt: skip
    attacks = autoattack(0.1, version="rand")
    assert [a.eot_draws for a in attacks.values()] == [20, 20]
    with pytest.raises(ValueError, match="version"):
        autoattack(0.1, version="fast")


def test_a_model_without_random_layers_is_not_predicted_twice(
    trained_image_model, images, monkeypatch
):
    """The randomness check asks only models holding a seed generator (an
    AdversarialModel's training attack's does not count): `predict` cannot
    gather a multi-process JAX distribution's outputs."""
    from keras_adv import AdversarialModel
    from keras_adv.evaluation.probe import ProbeSet

    def refuse(*args):
        raise AssertionError("predict was called")

    monkeypatch.setattr(ProbeSet, "predict", refuse)
    model = AdversarialModel(model=trained_image_model, attack=PGD(0.1, seed=0))
    result = evaluate_robustness(
        model, (images[0][:16], images[1][:16]), epsilons=[0.1],
        attacks=[FGSM(0.1)], checks=False,
    )  # fmt: skip
    assert len(result.worst_case) == 1
