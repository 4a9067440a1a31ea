"""keras-adv: adversarial attacks and training for Keras 3."""

from keras_adv import callbacks
from keras_adv import metrics
from keras_adv import objectives
from keras_adv.adversarial_model import AdversarialModel
from keras_adv.attacks import FGSM
from keras_adv.attacks import PGD
from keras_adv.attacks import Attack

__version__ = "0.1.0"

__all__ = [
    "AdversarialModel",
    "Attack",
    "FGSM",
    "PGD",
    "__version__",
    "callbacks",
    "metrics",
    "objectives",
]
