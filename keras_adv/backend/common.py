"""Helpers shared by the backend implementations (no framework import)."""


def mix_gradients(clean, adv, alpha):
    """`(1 - alpha) * clean + alpha * adv` for one weight; `None` where unused."""
    if clean is None or adv is None:
        return adv if clean is None else clean * (1.0 - alpha)
    return (1.0 - alpha) * clean + alpha * adv
