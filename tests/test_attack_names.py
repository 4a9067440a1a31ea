"""One naming scheme: `attacks.get(name)` and `attacks.name_of(attack)`."""

import pytest

from keras_adv import APGD
from keras_adv import APGDT
from keras_adv import FABT
from keras_adv import FGSM
from keras_adv import MIM
from keras_adv import PGD
from keras_adv import Square
from keras_adv import attacks
from keras_adv import autoattack
from keras_adv.experiments.sweep import SweepSettings


def test_get_builds_what_the_name_says():
    assert attacks.get("pgd20", 0.1, 0).steps == 20
    assert attacks.get("pgd20", 0.1, 0).epsilon == 0.1
    assert attacks.get("mim5").steps == 5
    assert attacks.get("apgd-ce").steps == 100
    assert attacks.get("apgd-dlr50").loss == "dlr"
    assert attacks.get("apgd-t").target_classes == 9
    assert attacks.get("square").queries == 5000
    assert attacks.get("square300").queries == 300
    assert attacks.get("pgd7-l2").norm == "l2"
    assert attacks.get("pgd7-l1").norm == "l1"
    assert attacks.name_of(attacks.get("PGD-7-L1")) == "pgd7-l1"
    assert attacks.get("apgd-ce-l1").norm == "l1"
    assert attacks.name_of(attacks.get("apgd-t-l1")) == "apgd-t-l1"
    assert type(attacks.get("fgsm")) is FGSM
    assert attacks.get("pgd3", seed=4).get_config()["seed"] == 4


def test_case_and_a_hyphen_before_the_count_do_not_matter():
    assert attacks.name_of(attacks.get("PGD-20")) == "pgd20"
    assert attacks.name_of(attacks.get("APGD-CE")) == "apgd-ce"
    assert attacks.name_of(attacks.get(" Square ")) == "square"


@pytest.mark.parametrize(
    "bad",
    [
        "pgd",
        "mim",
        "pgd0",
        "square0",
        "cw",
        "fgsm3",
        "square-l1",
        "fab-t-l1",
        "pgd20-l3",
        "",
    ],
)
def test_a_bad_name_is_refused_naming_what_was_typed(bad):
    with pytest.raises(ValueError, match=f"Received: {bad!r}"):
        attacks.get(bad)


def test_a_name_that_is_not_a_string_is_refused():
    with pytest.raises(ValueError, match="string such as 'pgd20'"):
        attacks.get(20)


def test_an_attack_is_returned_as_it_is():
    attack = PGD(0.1, steps=3)
    assert attacks.get(attack) is attack


@pytest.mark.parametrize(
    "attack, name",
    [
        (FGSM(0.1), "fgsm"),
        (FGSM(0.1, norm="l2"), "fgsm-l2"),
        (PGD(0.1, steps=20), "pgd20"),
        (PGD(0.1, norm="l2", steps=5), "pgd5-l2"),
        (MIM(0.1, steps=10), "mim10"),
        (APGD(0.1), "apgd-ce"),
        (APGD(0.1, steps=50, loss="dlr"), "apgd-dlr50"),
        (APGDT(0.1, norm="l2"), "apgd-t-l2"),
        (Square(0.1, queries=300), "square300"),
        (Square(0.1, norm="l2"), "square-l2"),
        (FABT(0.1, norm="l2", steps=20), "fab-t20-l2"),
    ],
    ids=repr,
)
def test_name_of_round_trips_through_get(attack, name):
    assert attacks.name_of(attack) == name
    rebuilt = attacks.get(name, attack.epsilon, attack.get_config()["seed"])
    assert rebuilt.get_config() == attack.get_config()


def first_logit(y, logits):
    return logits[:, 0]


def test_other_attacks_are_named_by_their_class():
    assert attacks.name_of(APGD(0.1, loss=first_logit)) == "apgd-custom"

    class MyAttack(FGSM):
        pass

    assert attacks.name_of(MyAttack(0.1)) == "fgsm"  # an FGSM still

    class FixedSteps(APGD):  # a signature without `steps`: the count is named
        def __init__(self, epsilon):
            super().__init__(epsilon, steps=100)

    assert attacks.name_of(FixedSteps(0.1)) == "apgd-ce100"

    class Blur(attacks.Attack):
        pass

    assert attacks.name_of(Blur(0.1)) == "blur"


def test_the_sweep_the_evaluation_and_autoattack_share_the_names():
    settings = SweepSettings(attacks=("PGD-20", "pgd20", "fgsm"), train_attack="FGSM")
    assert settings.attacks == ("pgd20", "fgsm")
    assert settings.train_attack == "fgsm"
    assert list(autoattack(0.1)) == ["apgd-ce", "apgd-t", "fab-t", "square"]
    l2 = autoattack(0.5, norm="l2")
    assert list(l2) == ["apgd-ce-l2", "apgd-t-l2", "fab-t-l2", "square-l2"]
    assert all(attack.norm == "l2" for attack in l2.values())
