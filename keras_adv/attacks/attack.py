"""`Attack`: the threat model and what every attack shares."""

from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from keras_adv import argument_validation as validation
from keras_adv import backend
from keras_adv import losses
from keras_adv import norms
from keras_adv.attacks.generate import generate


class Attack:
    """Base class of attacks: hyperparameters and pure computation.

    An attack maps `(forward, x, y)` to `x_adv` inside the threat model: the
    `norm` ball of radius `epsilon` around `x`, intersected with the valid
    input range `clip`. `forward` is a pure function `x -> outputs` (logits or
    probabilities); an attack never touches a model's variables, and stores
    neither the function nor the data.

    Subclasses implement `perturb(forward, x, y)` and extend `get_config`.

    Args:
        epsilon: the perturbation budget, on the scale of the inputs.
        norm: `"linf"`, `"l2"` or `"l1"` (sparse steps on the coordinates
            with the largest gradient, `norms.L1_PERCENTILE`). Defaults to
            `"linf"`.
        clip: the valid input range `(low, high)`, or `None` for unbounded
            inputs. Inputs outside it are rejected. Defaults to `(0.0, 1.0)`.
        targeted: if `True`, `y` holds target classes and the attack lowers
            their loss instead of raising the loss of the true class.
            Defaults to `False`.
        loss: a callable `(y_true, y_pred) -> per-example losses`, a
            `keras.losses.Loss` (its unreduced values are used), or a name:
            `"crossentropy"` (`"ce"`) or `"dlr"` (`keras_adv.losses.dlr`).
            `None` uses crossentropy matched to the outputs (see
            `from_logits`). Defaults to `None`.
        from_logits: for the default loss, whether the model outputs logits.
            `None` detects it per batch (probabilities lie in [0, 1] and sum
            to 1). Defaults to `None`.
        seed: integer seed of the attack's `keras.random.SeedGenerator`, for
            random starts. Defaults to `None` (a random seed).
    """

    # Whether the attack differentiates the model (white-box); evaluation
    # compares gradient-free attacks against the others to expose masking.
    uses_gradients = True
    # False for a training attack whose examples leave the epsilon ball
    # (N-FGSM): it cannot measure robust accuracy (`names.for_measuring`).
    stays_in_threat_model = True
    # Whether every norm, step and projection acts on each row of `x` alone,
    # with no per-example bookkeeping of losses (a best point, a target):
    # then rows may be tokens, each with its own budget (`per_token=True`).
    rowwise = False

    def __init__(
        self,
        epsilon: float,
        norm: str = "linf",
        clip: tuple[float, float] | None = (0.0, 1.0),
        targeted: bool = False,
        loss: str | Callable | None = None,
        from_logits: bool | None = None,
        seed: int | None = None,
    ):
        self.epsilon = validation.check_epsilon(epsilon)
        self.norm = norms.check_norm(norm)
        self.clip = validation.check_clip(clip)
        self.targeted = validation.check_bool(targeted, "targeted")
        if loss is not None and not callable(loss) and loss not in losses.NAMED:
            raise ValueError(
                f"Argument `loss` must be None, one of {sorted(losses.NAMED)} or a "
                "callable (y_true, y_pred) -> per-example losses. "
                f"Received: loss={loss!r}"
            )
        self.loss = loss
        if from_logits not in (None, True, False):
            raise ValueError(
                "Argument `from_logits` must be None, True or False. "
                f"Received: from_logits={from_logits!r}"
            )
        self.from_logits = from_logits
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def __call__(
        self,
        forward: Callable,
        x,
        y,
        epsilon: float | None = None,
        check_values: bool = True,
    ):
        """Returns `x_adv` for inputs `x` with labels (or targets) `y`.

        Runs eagerly or inside a traced function (`tf.function`, `jax.jit`,
        a Keras `train_step`); value checks only run on concrete inputs.
        The result is behind `stop_gradient`.

        Args:
            forward: a function `x -> outputs` (logits or probabilities).
            x: a batch of inputs, inside `clip`.
            y: labels, or target classes when `targeted`.
            epsilon: a budget for this call only (a float or a scalar
                tensor, e.g. from a schedule). Defaults to `self.epsilon`.
            check_values: check the values of concrete inputs (finite,
                inside `clip`, labels in range), which costs a forward pass
                and a copy to NumPy. `AdversarialModel` passes `False`: its
                steps are traced on TensorFlow and JAX, where values are
                never checked, and torch should not pay it per batch.
                Defaults to `True`.
        """
        x = ops.convert_to_tensor(x)
        y = ops.convert_to_tensor(y)
        validation.check_static_inputs(x, y)
        if check_values and backend.is_concrete(x):
            num_classes = forward(x).shape[-1]
            validation.check_concrete_inputs(x, y, num_classes, self.clip)
        epsilon = self.epsilon if epsilon is None else epsilon
        dtype = keras.backend.standardize_dtype(x.dtype)
        if dtype == keras.backend.floatx():  # the usual case: no casts
            return ops.stop_gradient(self.perturb(forward, x, y, epsilon))
        x = ops.cast(x, keras.backend.floatx())  # float64 or float16 inputs
        x_adv = ops.cast(self.perturb(forward, x, y, epsilon), dtype)
        return ops.stop_gradient(x_adv)

    def perturb(self, forward, x, y, epsilon):
        """The algorithm: `x_adv` within `epsilon` of `x`. Subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement `perturb`.")

    def perturb_and_predict(self, forward, x, y, epsilon):
        """`(perturb(forward, x, y, epsilon), forward(x))` in one go.

        For callers that need the clean outputs as well (the probe sets of
        the callbacks). Attacks whose first pass runs the model on `x` itself
        (PGD and FGSM without a random start) return that pass's outputs
        instead of running the model on `x` again.
        """
        return self.perturb(forward, x, y, epsilon), forward(x)

    def generate(
        self,
        model: Callable,
        x,
        y=None,
        batch_size: int = 128,
        epsilon: float | None = None,
    ) -> np.ndarray:
        """Attacks `model` on a whole dataset, in batches; returns a NumPy array.

        The attack is compiled once per model (not per batch): every batch,
        the last one padded, has the same shape.

        Args:
            model: a `keras.Model` with one output (logits or probabilities).
            x: inputs (NumPy array or tensor), or a `tf.data.Dataset` / any
                iterable of `(x, y)` batches (then leave `y` as `None`).
            y: labels (or targets, when `targeted`) for array inputs.
            batch_size: examples per batch for array inputs. Defaults to 128.
            epsilon: a budget for this call only; passed to the compiled
                attack as a tensor, so another value does not recompile it.
                Defaults to `self.epsilon`.
        """
        return generate(self, model, x, y, batch_size, epsilon)

    def objective(self, forward, y):
        """Per-example function the attack maximises: the loss, negated if targeted."""
        of_outputs = self.output_objective(y)
        return lambda x: of_outputs(forward(x))

    def output_objective(self, y):
        """The objective as a function of the model's outputs, `(batch,)` float32."""
        loss_fn = self._loss_fn()
        sign = -1.0 if self.targeted else 1.0

        def per_example(outputs):
            values = loss_fn(y, outputs)
            if len(values.shape) != 1:
                raise ValueError(
                    "Argument `loss` must return one value per example, shape "
                    f"(batch,). Received: a loss of shape {tuple(values.shape)}; "
                    "pass a keras.losses.Loss or an unreduced function."
                )
            return sign * ops.cast(values, "float32")

        return per_example

    def _loss_fn(self):
        if self.loss is None or isinstance(self.loss, str):
            named = losses.NAMED[self.loss or "crossentropy"]
            return lambda y_true, y_pred: named(y_true, y_pred, self.from_logits)
        if isinstance(self.loss, keras.losses.Loss):
            return self.loss.call  # unreduced: one value per example
        return self.loss

    def project(self, x, x_adv, epsilon):
        """Moves `x_adv` into the threat model around `x` (ball, then `clip`).

        For L1 with a `clip`, the exact projection onto the ball intersected
        with the box (`norms.project_l1_box`): clipping after the ball's
        projection would leave part of the budget unused.
        """
        if self.norm == "l1" and self.clip is not None:
            low, high = self.clip
            x_adv = x + norms.project_l1_box(x_adv - x, x, epsilon, low, high)
            return ops.clip(x_adv, low, high)  # rounding only
        x_adv = x + norms.project_to_ball(x_adv - x, epsilon, self.norm)
        if self.clip is not None:
            x_adv = ops.clip(x_adv, self.clip[0], self.clip[1])
        return x_adv

    def random_start_points(self, x, epsilon, count=1):
        """`count` uniform draws from the threat model around `x`, stacked."""
        x_rep = ops.tile(x, (count,) + (1,) * (len(x.shape) - 1))
        delta = norms.random_in_ball(
            ops.shape(x_rep), epsilon, self.norm, self.seed_generator, x.dtype
        )
        starts = self.project(x_rep, x_rep + delta, epsilon)
        return ops.reshape(starts, (count, -1) + tuple(x.shape[1:]))

    def loop_drawing(self, lower, upper, body, init):
        """`ops.fori_loop` for a `body(i, carry, draw)` that draws random numbers.

        The body wraps its random ops in `draw(fn)` (`fn()` runs them on
        `self.seed_generator`). The generator's state travels through the
        loop as a value, as JAX requires (a traced loop body cannot assign a
        variable), and is stored back once the loop ends.
        """
        variable = self.seed_generator.state

        def step(i, carry):
            seed, inner = carry
            current = [seed]

            def draw(fn):
                mapping = [(variable, current[0])]
                with keras.StatelessScope(state_mapping=mapping) as scope:
                    result = fn()
                current[0] = scope.get_current_value(variable)
                return result

            inner = body(i, inner, draw)
            return current[0], inner

        seed, result = ops.fori_loop(lower, upper, step, (variable.value, init))
        variable.assign(seed)
        return result

    def clone(self, **overrides) -> "Attack":
        """A copy with constructor arguments `overrides`, and its own random state.

        The loss is passed as the object it is (a bound method or closure
        need not be serializable), and the copy is validated like any attack.
        """
        config = self.get_config()
        if "loss" in config:
            config["loss"] = self.loss
        config.update(overrides)
        return type(self)(**config)

    def get_config(self) -> dict:
        return {
            "epsilon": self.epsilon,
            "norm": self.norm,
            "clip": self.clip,
            "targeted": self.targeted,
            "loss": keras.saving.serialize_keras_object(self.loss),
            "from_logits": self.from_logits,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("loss") is not None:
            config["loss"] = deserialize(config["loss"], "the attack's loss")
        if config.get("clip") is not None:
            config["clip"] = tuple(config["clip"])
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def deserialize(config, what, custom_objects=None):
    """`keras.saving.deserialize_keras_object`, failing in one line that names
    the object a saved model needs and how to make it loadable."""
    try:
        return keras.saving.deserialize_keras_object(
            config, custom_objects=custom_objects
        )
    except TypeError:
        if not isinstance(config, dict):
            raise
        inner = config.get("config")
        name = inner if isinstance(inner, str) else config.get("class_name")
        raise ValueError(
            f"Cannot rebuild {what} {name!r}: it is not registered with Keras. "
            "Decorate its definition with "
            "@keras.saving.register_keras_serializable() and import it before "
            "loading, or pass keras.saving.load_model(path, "
            f"custom_objects={{{name!r}: {name}}})."
        ) from None
