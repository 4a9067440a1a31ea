"""keras-adv: adversarial attacks and training for Keras 3."""

# First: says which Keras backend is missing and the extra that installs it.
from keras_adv import backend  # noqa: F401  # isort: skip
from keras_adv import callbacks
from keras_adv import metrics
from keras_adv.attacks import APGD
from keras_adv.attacks import APGDT
from keras_adv.attacks import FABT
from keras_adv.attacks import FGSM
from keras_adv.attacks import MIM
from keras_adv.attacks import NFGSM
from keras_adv.attacks import PGD
from keras_adv.attacks import Attack
from keras_adv.attacks import Square
from keras_adv.evaluation import RobustnessResult
from keras_adv.evaluation import RobustnessWarning
from keras_adv.evaluation import autoattack
from keras_adv.evaluation import evaluate_robustness
from keras_adv.evaluation import sanity_checks
from keras_adv.training import AdversarialModel
from keras_adv.training import objectives

__version__ = "0.1.0"

__all__ = [
    "APGD",
    "APGDT",
    "AdversarialModel",
    "Attack",
    "FABT",
    "FGSM",
    "MIM",
    "NFGSM",
    "PGD",
    "RobustnessResult",
    "RobustnessWarning",
    "Square",
    "__version__",
    "autoattack",
    "callbacks",
    "evaluate_robustness",
    "metrics",
    "objectives",
    "sanity_checks",
]
