"""Attacks: hyperparameters plus pure `keras.ops` computation, every backend."""

from keras_adv.attacks.attack import Attack
from keras_adv.attacks.fgsm import FGSM
from keras_adv.attacks.pgd import PGD

__all__ = ["Attack", "FGSM", "PGD"]
