"""How clean and adversarial losses combine in adversarial training."""

import keras
from keras import ops

from keras_adv import argument_validation as validation
from keras_adv import backend
from keras_adv import losses
from keras_adv import norms


class Objective:
    """Base class: weights the clean loss, the adversarial loss and a KL term.

    `AdversarialModel` computes the compiled loss on clean inputs (`clean`)
    and on perturbed inputs (`adversarial`) and asks the objective to combine
    them. `needs_clean_loss` tells whether the clean term is used at all;
    `attack_loss` (a per-example loss or `None`) replaces the attack's own
    loss, and the attack then aims at the clean predictions, not the labels.
    """

    needs_clean_loss = True
    attack_loss = None
    uses_trajectory = False  # True: the adversarial loss is the mean over
    # the attack's ascent points (`PGD.trajectory`), not at its end
    needs_labels = False  # True: `combine` also gets `y` and `sample_weight`
    # `(clean, adversarial)` when the loss is `clean * L(x) + adversarial *
    # L(x_adv)` (the two-pass training step needs to know); `None` otherwise.
    loss_weights = None
    # A method `penalty(forward, x, y, epsilon, norm, seed)` where a term
    # computed from the clean inputs is added in training (GradAlign); `None`.
    penalty = None

    def combine(self, clean, adversarial, y_pred, y_pred_adv):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package="keras_adv")
class Mixed(Objective):
    """`(1 - alpha) * L(x) + alpha * L(x_adv)`.

    Goodfellow et al. 2014, "Explaining and Harnessing Adversarial Examples",
    arXiv:1412.6572 (alpha 0.5).

    Args:
        alpha: weight of the adversarial loss, in [0, 1]. Defaults to 0.5.
    """

    def __init__(self, alpha: float = 0.5):
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise ValueError(
                f"Argument `alpha` must be a number in [0, 1]. "
                f"Received: alpha={alpha!r}"
            )
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(
                f"Argument `alpha` must be in [0, 1]. Received: alpha={alpha}"
            )
        self.alpha = float(alpha)
        self.needs_clean_loss = self.alpha < 1.0
        self.loss_weights = (1.0 - self.alpha, self.alpha)

    def combine(self, clean, adversarial, y_pred, y_pred_adv):
        if not self.needs_clean_loss:
            return adversarial
        return (1.0 - self.alpha) * clean + self.alpha * adversarial

    def get_config(self):
        return {"alpha": self.alpha}


@keras.saving.register_keras_serializable(package="keras_adv")
class Madry(Mixed):
    """`L(x_adv)` only: Madry et al. 2017, arXiv:1706.06083."""

    def __init__(self) -> None:
        super().__init__(alpha=1.0)

    def get_config(self):
        return {}


@keras.saving.register_keras_serializable(package="keras_adv")
class Regularized(Objective):
    """`L(x) + multiplier * L(x_adv)`: the adversarial loss as a regularizer.

    The form of TensorFlow Neural Structured Learning's
    `AdversarialRegularization` (its `multiplier`, default 0.2) and of
    Miyato et al. 2016, "Adversarial Training Methods for Semi-Supervised
    Text Classification", arXiv:1605.07725. Unlike `Mixed`, the clean loss
    keeps its full weight, so the total grows with `multiplier`:
    `Regularized(m)` is `(1 + m) * Mixed(alpha=m / (1 + m))`, the same
    direction with a learning rate `1 + m` times larger.

    Args:
        multiplier: weight of the adversarial loss, >= 0. Defaults to 0.2.
    """

    def __init__(self, multiplier: float = 0.2):
        self.multiplier = validation.check_epsilon(multiplier, "multiplier")
        self.loss_weights = (1.0, self.multiplier)

    def combine(self, clean, adversarial, y_pred, y_pred_adv):
        return clean + self.multiplier * adversarial

    def get_config(self):
        return {"multiplier": self.multiplier}


@keras.saving.register_keras_serializable(package="keras_adv")
class Trades(Objective):
    """`L(x) + beta * KL(f(x) || f(x_adv))`; the attack maximises the KL term.

    Zhang et al. 2019, "Theoretically Principled Trade-off between Robustness
    and Accuracy", arXiv:1901.08573.

    Args:
        beta: weight of the KL term, > 0. Defaults to 6.0 (the paper's).
        from_logits: whether the model outputs logits; `None` detects it per
            batch. Defaults to `None`.
    """

    def __init__(self, beta: float = 6.0, from_logits: bool | None = None):
        self.beta = validation.check_positive(beta, "beta")
        self.from_logits = from_logits

    def attack_loss(self, clean_outputs, y_pred):
        return losses.kl_divergence(clean_outputs, y_pred, self.from_logits)

    def combine(self, clean, adversarial, y_pred, y_pred_adv):
        kl = losses.kl_divergence(y_pred, y_pred_adv, self.from_logits)
        return clean + self.beta * ops.mean(kl)

    def get_config(self):
        return {"beta": self.beta, "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="keras_adv")
class FreeLB(Objective):
    """`(1 / K) * sum_t L(x + delta_t)` over the attack's `K` ascent points.

    Zhu et al. 2020, "FreeLB: Enhanced Adversarial Training for Natural
    Language Understanding", arXiv:1909.11764, Algorithm 1: `delta_0` is the
    start and `delta_t = proj(delta_{t-1} + alpha g / ||g||)` for
    `t < K`, with `g` the loss's gradient at `delta_{t-1}`; the weights
    follow the mean of the weight gradients at `delta_0 ... delta_{K-1}`.
    Use it with a PGD attack (`PGD(eps, norm="l2", steps=K, step_size=
    alpha)`): its `steps` is `K`, its start `delta_0` (FreeLB starts at a
    random point: keep `random_start=True`). Usually on embeddings
    (`perturb="embeddings"`).

    The update is the paper's, and so is the cost where the gradients can
    be shared (`shared_pass=True`, a plain crossentropy, no mode-dependent
    layer or `attack_training=True`; see `two_pass_step.shared_trajectory`):
    each of the `K` forward-backward passes gives the point's weight
    gradient and the next ascent step. Elsewhere the ascent and the weight
    gradients take separate passes (`2K - 1`).
    """

    needs_clean_loss = False
    uses_trajectory = True

    def combine(self, clean, adversarial, y_pred, y_pred_adv):
        return adversarial  # the mean over the trajectory, from the model


@keras.saving.register_keras_serializable(package="keras_adv")
class MART(Objective):
    """Misclassification-aware adversarial training (MART).

    Wang et al. 2020, "Improving Adversarial Robustness Requires Revisiting
    Misclassified Examples", ICLR 2020 (openreview rklOg6EFwS), eq. (8) and
    their released `mart_loss`; per example, averaged over the batch:

        BCE(p(x_adv), y) + beta * KL(p(x) || p(x_adv)) * (1 - p_y(x))
        BCE(p, y) = -log p_y - log(1 - max_{k != y} p_k)

    The boosted crossentropy pushes down the strongest wrong class on the
    adversarial example; the KL term weighs the examples the clean model
    gets wrong (low `p_y(x)`) more. The compiled loss is not used in the
    gradient (it is still logged as `clean_loss` and `adv_loss`); the attack
    is the model's own (PGD on the crossentropy, as in the paper).
    `sample_weight` (and `class_weight`) weigh each example's term.

    Args:
        beta: weight of the KL term, > 0. Defaults to 6.0 (the paper's).
        from_logits: whether the model outputs logits; `None` detects it per
            batch. Defaults to `None`.
    """

    needs_labels = True

    def __init__(self, beta: float = 6.0, from_logits: bool | None = None):
        self.beta = validation.check_positive(beta, "beta")
        self.from_logits = from_logits

    def combine(
        self, clean, adversarial, y_pred, y_pred_adv, y=None, sample_weight=None
    ):
        log_clean = losses.log_probabilities(y_pred, self.from_logits)
        log_adv = losses.log_probabilities(y_pred_adv, self.from_logits)
        one_hot = ops.one_hot(
            ops.reshape(ops.cast(y, "int32"), (-1,)), log_adv.shape[-1]
        )
        p_adv = ops.exp(log_adv)
        best_other = ops.max(p_adv * (1.0 - one_hot), axis=-1)
        boosted = -ops.sum(one_hot * log_adv, axis=-1) - ops.log(
            1.0001 - best_other + 1e-12  # the released code's offsets
        )
        p_clean = ops.exp(log_clean)
        kl = ops.sum(p_clean * (log_clean - log_adv), axis=-1)
        true_clean = ops.sum(one_hot * p_clean, axis=-1)
        per_example = boosted + self.beta * kl * (1.0000001 - true_clean)
        if sample_weight is not None:
            weight = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
            return ops.sum(per_example * weight) / ops.cast(
                ops.shape(per_example)[0], "float32"
            )
        return ops.mean(per_example)

    def get_config(self):
        return {"beta": self.beta, "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="keras_adv")
class GradAlign(Objective):
    """`L(x_adv) + lam * (1 - cos(grad L(x), grad L(x + eta)))`: GradAlign.

    Andriushchenko & Flammarion 2020, "Understanding and Improving Fast
    Adversarial Training", NeurIPS 2020, arXiv:2007.02617, eq. (6) and
    their released `train.py`: the input gradients of the crossentropy at
    `x` and at `x + eta`, `eta` uniform in the training ball (not clipped),
    should point the same way; their cosine, averaged over the examples
    where both gradients are non-zero, enters the loss. The gradient at `x`
    is held fixed; the one at `x + eta` is differentiated again (double
    backpropagation), so a step costs about two passes more than FGSM. Use
    it with `FGSM(eps)` (no random start), as the paper does: it keeps
    FGSM training from catastrophic overfitting at budgets where FGSM-RS
    collapses. The input-gradient passes run in the attack's mode
    (inference unless `attack_training=True`).

    Args:
        lam: weight of the alignment term, >= 0. The paper: 0.2 at 8/255 on
            CIFAR-10, larger for larger budgets. Defaults to 0.2.
        from_logits: whether the model outputs logits; `None` detects it per
            batch. Defaults to `None`.
    """

    needs_clean_loss = False

    def __init__(self, lam: float = 0.2, from_logits: bool | None = None):
        self.lam = validation.check_epsilon(lam, "lam")
        self.from_logits = from_logits

    def combine(self, clean, adversarial, y_pred, y_pred_adv):
        return adversarial

    def penalty(self, forward, x, y, epsilon, norm, seed):
        """`lam * (1 - mean cos)` for the batch, `eta` drawn uniformly from
        the `epsilon` ball in `norm`; see the class docstring."""
        eta = norms.random_in_ball(ops.shape(x), epsilon, norm, seed, x.dtype)
        return self.alignment(forward, x, y, eta)

    def alignment(self, forward, x, y, eta):
        """`lam * (1 - mean cos(grad L(x), grad L(x + eta)))` for a given `eta`."""

        def loss_at(inputs):
            values = losses.crossentropy(y, forward(inputs), self.from_logits)
            return ops.sum(values)

        _, at_x = backend.value_and_input_grad(loss_at, x)
        at_x = ops.stop_gradient(at_x)
        at_noise = backend.differentiable_input_grad(loss_at, x + eta)
        (first, _), (second, _) = norms.flatten(at_x), norms.flatten(at_noise)
        first_norm = ops.sqrt(ops.sum(ops.square(first), axis=1))
        second_norm = ops.sqrt(ops.sum(ops.square(second), axis=1))
        valid = ops.logical_and(first_norm > 0, second_norm > 0)
        cos = ops.sum(first * second, axis=1) / ops.where(
            valid, first_norm * second_norm, 1.0
        )
        weight = ops.cast(valid, cos.dtype)
        count = ops.maximum(ops.sum(weight), 1.0)
        return self.lam * ops.sum(weight * (1.0 - cos)) / count

    def get_config(self):
        return {"lam": self.lam, "from_logits": self.from_logits}


_NAMES = {
    "mixed": Mixed,
    "madry": Madry,
    "regularized": Regularized,
    "trades": Trades,
    "freelb": FreeLB,
    "mart": MART,
    "gradalign": GradAlign,
}


def get(identifier: "str | dict | Objective") -> "Objective":
    """An `Objective` from a name (mixed, madry, regularized, trades, freelb,
    mart, gradalign), a config or an instance."""
    if isinstance(identifier, Objective):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _NAMES:
        return _NAMES[identifier.lower()]()
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    raise ValueError(
        f"Argument `objective` must be one of {sorted(_NAMES)} or an Objective "
        f"instance such as keras_adv.objectives.Mixed(alpha=0.3). "
        f"Received: objective={identifier!r}"
    )
