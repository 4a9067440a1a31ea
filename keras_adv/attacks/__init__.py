"""Attacks: hyperparameters plus pure `keras.ops` computation, every backend."""

from keras_adv.attacks.apgd import APGD
from keras_adv.attacks.apgd_t import APGDT
from keras_adv.attacks.attack import Attack
from keras_adv.attacks.fab import FABT
from keras_adv.attacks.fgsm import FGSM
from keras_adv.attacks.mim import MIM
from keras_adv.attacks.names import get
from keras_adv.attacks.names import name_of
from keras_adv.attacks.nfgsm import NFGSM
from keras_adv.attacks.pgd import PGD
from keras_adv.attacks.square import Square

__all__ = [
    "APGD",
    "APGDT",
    "Attack",
    "FABT",
    "FGSM",
    "MIM",
    "NFGSM",
    "PGD",
    "Square",
    "get",
    "name_of",
]
