"""Adversarial training: `AdversarialModel` and everything only it uses."""

from keras_adv.training.adversarial_model import AdversarialModel

__all__ = ["AdversarialModel"]
