"""`AdversarialModel`: adversarial training as a drop-in for `keras.Model`."""

import contextlib
import dataclasses
import functools
import inspect

import keras
from keras import ops

from keras_adv import argument_validation as validation
from keras_adv import backend
from keras_adv.attacks import layer_perturbation
from keras_adv.attacks.attack import Attack
from keras_adv.attacks.attack import deserialize
from keras_adv.training import data_check
from keras_adv.training import keras_internals
from keras_adv.training import model_wrapping
from keras_adv.training import objectives
from keras_adv.training import two_pass_step
from keras_adv.training.input_selection import AdversarialInputs
from keras_adv.training.metric_counterparts import adversarial_counterparts
from keras_adv.training.schedule import EpsilonSchedule

_SEED_KEY = "attack_seed_state"


@dataclasses.dataclass(frozen=True)
class StepMode:
    """What a training step did before Keras called `compute_loss`.

    Attributes:
        x_adv: the batch's adversarial examples, made before Keras's step
            differentiates (`None`: `compute_loss` attacks the batch itself).
        adversarial_only: the step trains on the adversarial batch alone
            (`x` and `y_pred` given to `compute_loss` are adversarial).
    """

    x_adv: object = None
    adversarial_only: bool = False


_PLAIN_STEP = StepMode()
_FIT_SIGNATURE = inspect.signature(keras.Model.fit).replace(
    parameters=list(inspect.signature(keras.Model.fit).parameters.values())[1:]
)
_ADV_ARGS = (
    "attack",
    "objective",
    "attack_training",
    "adv_warmup",
    "epsilon_ramp",
    "evaluate_adversarial",
    "perturb",
    "relative_budget",
    "per_token",
    "shared_pass",
    "log_clean",
    "awp_gamma",
    "awp_warmup",
)


@keras.saving.register_keras_serializable(package="keras_adv")
class AdversarialModel(keras.Model):
    """A `keras.Model` whose `fit` trains on clean and perturbed batches.

    Build it like a functional `keras.Model`, or wrap a model you already have
    (its layers and weights are shared, not copied):

    ```python
    model = AdversarialModel(inputs, outputs, attack=PGD(0.1, steps=7))
    model = AdversarialModel(model=existing_model, attack=FGSM(0.1))
    ```

    Then `compile` and `fit` as usual. Each training step attacks the batch
    against the current weights (the result behind `stop_gradient`), runs
    the model on the perturbed batch, and minimises the `objective`'s mix of
    the compiled loss on clean and perturbed inputs. Logs carry `loss` (the
    objective), `clean_loss`, `adv_loss`, every compiled metric on clean
    inputs and its `adv_` counterpart (with `log_clean=False` and the madry
    objective, only `loss`, `adv_loss` and the `adv_` metrics). `evaluate`
    attacks as well (unless `evaluate_adversarial=False`); `predict` is clean.

    Args:
        *args: `inputs, outputs` as for a functional `keras.Model`.
        model: a built `keras.Model` to wrap instead of `inputs, outputs`.
        attack: a `keras_adv.attacks.Attack`, e.g. `PGD(0.1, steps=7)`.
        objective: `"mixed"` (alpha 0.5), `"madry"`, `"trades"`, or a
            `keras_adv.objectives` instance such as `Mixed(alpha=0.3)`.
            Defaults to `"mixed"`.
        attack_training: run the attack's forward passes in training mode
            (BatchNorm batch statistics, Dropout active). Attack passes never
            update BatchNorm statistics in inference mode. Defaults to `False`.
        adv_warmup: epochs of clean training before the attack starts.
            Defaults to 0.
        epsilon_ramp: epochs over which the budget grows linearly from
            `epsilon / epsilon_ramp` to `epsilon` after the warm-up.
            Defaults to 0 (full budget at once).
        evaluate_adversarial: whether `evaluate` (and validation) also
            attacks and reports `adv_` metrics. Defaults to `True`.
        perturb: what the attack perturbs. `None` (default): every float
            input. Names (dict keys or input names) or positions: those
            inputs of a multi-input model. `"embeddings"`, a layer name or a
            layer: that layer's output instead of the inputs (text models:
            token ids cannot be perturbed, their embeddings can; see
            `keras_adv.attacks.layer_perturbation`). At a layer the attack
            starts from zeros, is not clipped (its `clip` is ignored), and
            leaves masked positions (padding) alone.
        relative_budget: with `perturb` at a layer, the attack's epsilon is
            a share of each example's norm there (over its unmasked
            positions): `FGSM(0.1, norm="l2")` moves each sequence's
            embeddings by 10% of their norm, however large the model makes
            them. Defaults to `False` (absolute norms).
        per_token: with `perturb` at a layer whose output is `(batch,
            tokens, features)`, each token gets the budget (its own norm
            over the features, e.g. `||delta_t||_2 <= eps` for every token
            `t`) instead of each example over all its tokens. For attacks
            that act on each row alone: FGSM, PGD with `restarts=1`, MIM.
            Defaults to `False`.
        shared_pass: for FGSM with the mixed or madry objective, take the
            attack's input gradient from the clean backward pass (two passes
            per step instead of three) wherever that is exact; see
            `keras_adv.training.two_pass_step`. Defaults to `True`.
        log_clean: whether training logs report `clean_loss` and the
            compiled metrics on clean inputs. With the madry objective, which
            does not train on clean inputs, that takes a forward pass of its
            own on every step; `False` skips it and logs `loss`, `adv_loss`
            and the `adv_` metrics only (validation still reports both).
            Other objectives train on the clean pass and need `True`.
            Defaults to `True`.
        awp_gamma: adversarial weight perturbation (AWP, Wu et al. 2020,
            "Adversarial Weight Perturbation Helps Robust Generalization",
            arXiv:2004.05884): each step also perturbs the weights, layer by
            layer, along the gradient of the objective's loss at the
            adversarial batch, `v_l = awp_gamma * ||w_l|| * g_l / ||g_l||`
            (kernels only: weights with more than one axis), takes Keras's
            step at `w + v` and takes `v` off again, so the update is the
            gradient at the perturbed weights applied to `w` (their released
            `AdvWeightPerturb`: one proxy step, then perturb, step,
            restore). One more forward-backward pass per step. The paper:
            0.005 to 0.01 with PGD-10 on CIFAR-10. Defaults to 0 (off).
        awp_warmup: epochs of training without the weight perturbation
            (their `--awp-warmup`), for models that must first leave chance
            level. Defaults to 0.
    """

    def __init__(
        self,
        *args,
        model: keras.Model | None = None,
        attack: Attack | None = None,
        objective: "str | objectives.Objective" = "mixed",
        attack_training: bool = False,
        adv_warmup: int = 0,
        epsilon_ramp: int = 0,
        evaluate_adversarial: bool = True,
        perturb: "str | int | list[str | int] | None" = None,
        relative_budget: bool = False,
        per_token: bool = False,
        shared_pass: bool = True,
        log_clean: bool = True,
        awp_gamma: float = 0.0,
        awp_warmup: int = 0,
        **kwargs,
    ):
        if model is not None:
            if args or "inputs" in kwargs or "outputs" in kwargs:
                raise ValueError(
                    "Pass either `model` (to wrap a model) or `inputs, outputs`, "
                    "not both. Received: model and inputs/outputs"
                )
            args = model_wrapping.wrap(model)
            kwargs.setdefault("name", f"adversarial_{model.name}")
        if not args and "inputs" not in kwargs:
            raise ValueError(
                "AdversarialModel needs `inputs, outputs` (like a functional "
                "keras.Model) or `model=` (a model to wrap). Received neither."
            )
        super().__init__(*args, **kwargs)
        if not isinstance(attack, Attack):
            raise ValueError(
                "Argument `attack` must be a keras_adv attack such as "
                f"keras_adv.PGD(epsilon=0.1). Received: attack={attack!r}"
            )
        layer = layer_perturbation.find(self, perturb)
        self.layer_perturbation = (
            None if layer is None else layer_perturbation.LayerPerturbation.of(layer)
        )
        if layer is None:
            model_wrapping.check_budget(attack)
        self.relative_budget = layer_perturbation.check_relative_budget(
            relative_budget, layer is not None, perturb
        )
        self.per_token = layer_perturbation.check_per_token(
            per_token, layer is not None, perturb, [attack]
        )
        # At a layer, its spec as given ("embeddings") or the layer's name.
        self._layer_spec = (
            None
            if layer is None
            else (perturb if isinstance(perturb, str) else layer.name)
        )
        self.attack = attack
        self.attack_seed_generator = attack.seed_generator  # tracked: saved, JAX
        self.objective = objectives.get(objective)
        log_clean = validation.check_bool(log_clean, "log_clean")
        if not log_clean and self.objective.needs_clean_loss:
            raise ValueError(
                "Argument `log_clean=False` skips the clean forward pass, which "
                f"objective {self.objective!r} trains on. Use it with "
                "objective='madry', or leave log_clean=True. "
                f"Received: log_clean={log_clean!r}"
            )
        if self.objective.uses_trajectory and (
            not hasattr(attack, "trajectory") or not log_clean
        ):
            raise ValueError(
                f"Objective {self.objective!r} trains on the points a PGD attack "
                "visits: pass attack=PGD(eps, norm='l2', steps=K) (and keep "
                f"log_clean=True). Received: attack={attack!r}, "
                f"log_clean={log_clean!r}"
            )
        if self.objective.penalty is not None and (layer is not None or not log_clean):
            raise ValueError(
                f"Objective {self.objective!r} computes input gradients at the "
                "clean inputs: it needs perturb=None (the model's inputs, not a "
                f"layer's output) and log_clean=True. Received: perturb={perturb!r}, "
                f"log_clean={log_clean!r}"
            )
        self.log_clean = log_clean
        if validation.check_epsilon(awp_gamma, "awp_gamma") >= 1.0:
            raise ValueError(
                "Argument `awp_gamma` must be a number in [0, 1): the size of the "
                "weight perturbation relative to each layer's weight norm, e.g. "
                f"0.005. Received: awp_gamma={awp_gamma!r}"
            )
        if awp_gamma and self.objective.uses_trajectory:
            raise ValueError(
                f"Argument `awp_gamma` perturbs the weights along the loss at one "
                f"adversarial batch; objective {self.objective!r} trains on a "
                "trajectory of them. Use another objective, or awp_gamma=0."
            )
        self.awp_gamma = float(awp_gamma)
        self.awp_schedule = EpsilonSchedule(awp_warmup, names=("awp_warmup", None))
        if self.awp_schedule.active and not self.awp_gamma:
            raise ValueError(
                "Argument `awp_warmup` delays the weight perturbation, which is off "
                f"(awp_gamma=0). Set awp_gamma too. Received: awp_warmup={awp_warmup!r}"
            )
        if self.awp_schedule.active:  # only then: other models keep their weights
            self.awp_scale = keras.Variable(1.0, trainable=False, name="awp_scale")
        attack_training = validation.check_bool(attack_training, "attack_training")
        if attack_training and not backend.TRAINING_MODE_ATTACKS:
            raise ValueError(
                "Argument `attack_training=True` is not supported on the "
                f"{keras.backend.backend()} backend: BatchNormalization updates "
                "inside the attack's gradient would escape it. Use the default "
                "(inference mode). Received: attack_training=True"
            )
        self.attack_training = attack_training
        self._evaluate_adversarial = validation.check_bool(
            evaluate_adversarial, "evaluate_adversarial"
        )
        self.schedule = EpsilonSchedule(adv_warmup, epsilon_ramp)
        self.epsilon_scale = keras.Variable(
            1.0, trainable=False, name="adv_epsilon_scale"
        )
        self.inputs_to_perturb = AdversarialInputs(None if layer else perturb)
        self.adv_loss_tracker = keras.metrics.Mean(name="adv_loss")
        self.clean_loss_tracker = keras.metrics.Mean(name="clean_loss")
        self.adv_compile_metrics = None
        self.shared_pass = validation.check_bool(shared_pass, "shared_pass")
        self._step_mode = _PLAIN_STEP  # set by `_in_step` for Keras's own step

    @functools.cached_property  # in __dict__: not tracked as a layer again
    def _direct_layer(self):
        return model_wrapping.direct_layer(self)

    def _forward(self, x, training):
        """`self(x, training=training)`, for the passes of a training step.

        A model that only wraps another calls that one directly (see
        `model_wrapping.direct_layer`): the same outputs, less overhead.
        """
        layer = self._direct_layer
        return (self if layer is None else layer)(x, training=training)

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        if loss is None:
            raise ValueError(
                "Argument `loss` is required: AdversarialModel attacks and trains "
                "on the compiled loss, e.g. loss=keras.losses."
                "SparseCategoricalCrossentropy(from_logits=True). Received: loss=None"
            )
        super().compile(optimizer=optimizer, loss=loss, **kwargs)
        self._cached_attack = None
        self.adv_compile_metrics = adversarial_counterparts(
            self, kwargs.get("metrics"), kwargs.get("weighted_metrics")
        )

    def compile_from_config(self, config):
        # Keras skips models that override `compile`; ours only adds checks.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        # The attack's random state, so that a resumed fit draws what an
        # uninterrupted one would (BackupAndRestore, checkpoints).
        store[_SEED_KEY] = ops.convert_to_numpy(self.attack.seed_generator.state)

    def load_own_variables(self, store):
        keys = list(store.keys())
        if _SEED_KEY in keys:
            self.attack.seed_generator.state.assign(store[_SEED_KEY])
        super().load_own_variables({k: store[k] for k in keys if k != _SEED_KEY})

    @property
    def metrics(self):
        metrics = super().metrics
        extra = [self.clean_loss_tracker, self.adv_loss_tracker]
        if self.adv_compile_metrics is not None:
            extra.append(self.adv_compile_metrics)
        metrics = [m for m in metrics if all(m is not e for e in extra)]
        if getattr(self, "_clean_evaluation", False):
            return metrics + [self.clean_loss_tracker]  # no adv_ values to report
        return metrics + extra

    @property
    def evaluate_adversarial(self):
        return self._evaluate_adversarial

    @evaluate_adversarial.setter
    def evaluate_adversarial(self, value):
        self._evaluate_adversarial = validation.check_bool(
            value, "evaluate_adversarial"
        )
        self.test_function = None  # its metrics differ: compile it again

    def evaluate(self, x=None, y=None, *args, **kwargs):
        if not getattr(self, "_data_checked", False):  # fit checked its own
            x, y = self._checked(x, y)
        self._clean_evaluation = not self.evaluate_adversarial
        try:
            return super().evaluate(x, y, *args, **kwargs)
        finally:
            self._clean_evaluation = False

    def fit(self, x=None, y=None, *args, **kwargs):
        arguments = _FIT_SIGNATURE.bind(x, y, *args, **kwargs).arguments
        arguments["x"], arguments["y"] = self._checked(x, y)
        validation_data = arguments.get("validation_data")
        if isinstance(validation_data, (tuple, list)):
            checked = self._checked(*validation_data[:2])
            arguments["validation_data"] = (*checked, *validation_data[2:])
        elif validation_data is not None:
            arguments["validation_data"] = self._checked(validation_data, None)[0]
        callbacks = list(arguments.get("callbacks") or [])
        if self.schedule.active:
            callbacks.insert(0, self.schedule.callback(self.epsilon_scale))
        if self.awp_schedule.active:
            callbacks.insert(0, self.awp_schedule.callback(self.awp_scale, "awp_scale"))
        arguments["callbacks"] = callbacks
        self._data_checked = True
        try:
            return super().fit(**arguments)
        finally:
            self._data_checked = False

    def _checked(self, x, y):
        """`(x, y)` checked against the attack's threat model, once per call
        (see `data_check`); a generator comes back as an equal one."""
        sample, x = data_check.peek(x, y)
        if sample is not None and self.layer_perturbation is None:
            data_check.check(self, *sample, self.inputs_to_perturb)
        return x, y

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        # Keras builds compiled metrics here, before any step is traced (and
        # per replica under a distribution strategy); build ours alongside.
        counterparts = self.adv_compile_metrics
        if counterparts is not None and not counterparts.built:
            counterparts.build(y, y_pred)
        if self._step_mode.adversarial_only:  # y_pred is adversarial
            clean = keras_internals.compiled_metrics(self)
            if clean is not None and not clean.built:  # for validation
                clean.build(y, y_pred)  # but not updated on adversarial y_pred
            return self._logs_of(
                [
                    keras_internals.loss_tracker(self),
                    self.adv_loss_tracker,
                    counterparts,
                ]
            )
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def _logs_of(self, metrics):
        """Keras's `get_metrics_result`, for some of the metrics."""
        logs = {}
        for metric in metrics:
            if metric is None:
                continue
            result = metric.result()
            logs.update(result if isinstance(result, dict) else {metric.name: result})
        return logs

    def train_step(self, *args):
        data = args[-1]  # JAX: (state, data); elsewhere: (data,)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if not self.log_clean:
            return self._adversarial_train_step(args, x, y, sample_weight)
        weights = two_pass_step.shared_pass_weights(self, x)
        if weights is not None:
            return backend.stateful_train_step(
                self._trainer_state_variables,
                args,
                lambda data: two_pass_step.train_step(self, data, *weights),
            )
        if two_pass_step.shared_trajectory(self, x):  # FreeLB in K passes
            return backend.stateful_train_step(
                self._trainer_state_variables,
                args,
                lambda data: two_pass_step.trajectory_train_step(self, data),
            )

        def attack():
            y_pred = None
            if self.objective.attack_loss is not None:
                y_pred = self._forward(x, training=self.attack_training)
            return self.adversarial_examples(
                x, y, y_pred, trajectory=self.objective.uses_trajectory
            )

        # Attack before Keras differentiates: its tape (or jax.value_and_grad)
        # then records only the clean and adversarial passes, not the attack.
        x_adv, args = backend.attack_before_step(
            self._trainer_state_variables, args, attack
        )
        with self._in_step(StepMode(x_adv=x_adv)):
            return self._keras_step(args, x, x_adv, y, sample_weight)

    def _keras_step(self, args, x, x_adv, y, sample_weight):
        """Keras's own `train_step`; with `awp_gamma`, taken at the weights
        perturbed by AWP, which are restored after it."""
        if not self.awp_gamma:
            return super().train_step(*args)
        deltas, args = backend.attack_before_step(
            self._trainer_state_variables,
            args,
            lambda: self._weight_perturbation(x, x_adv, y, sample_weight),
        )
        args = backend.shift_weights_before_step(
            self._trainer_state_variables, args, deltas
        )
        result = super().train_step(*args)
        return backend.shift_weights_after_step(
            self._trainer_state_variables, result, deltas
        )

    def _weight_perturbation(self, x, x_adv, y, sample_weight):
        """AWP's `v` for each trainable variable (see `awp_gamma`).

        The gradient is the objective's loss at the adversarial batch (the
        compiled loss on it for objectives without a clean term), in
        training mode; whatever that pass assigns (BatchNorm statistics,
        metrics) is dropped.
        """

        def loss():
            if not self.objective.needs_clean_loss:
                outputs = self._forward_adversarial(x, x_adv, training=True)
                return keras.Model.compute_loss(self, x, y, outputs, sample_weight)
            y_pred = self._forward(x, training=True)
            return self._objective_loss(
                x, y, y_pred, sample_weight, True, StepMode(x_adv=x_adv)
            )

        variables = self.trainable_variables
        frozen = [*self.non_trainable_variables, *self.metrics_variables]
        grads = backend.weight_grads(loss, variables, frozen)
        deltas = []
        for variable, grad in zip(variables, grads, strict=True):
            value = ops.convert_to_tensor(variable.value)
            if len(variable.shape) <= 1:  # biases, BatchNorm scales: left alone
                deltas.append(ops.zeros_like(value))
                continue
            scale = ops.sqrt(ops.sum(ops.square(value))) / (
                ops.sqrt(ops.sum(ops.square(grad))) + 1e-20
            )
            if self.awp_schedule.active:  # 0 during the warm-up epochs
                scale = scale * ops.cast(self.awp_scale, scale.dtype)
            deltas.append(ops.cast(self.awp_gamma * scale * grad, value.dtype))
        return deltas

    @contextlib.contextmanager
    def _in_step(self, mode):
        """Keras's own step, told what this step did before it (`mode`)."""
        self._step_mode = mode
        try:
            yield
        finally:
            self._step_mode = _PLAIN_STEP

    def _trainer_state_variables(self):
        """The variables of Keras's JAX trainer `state`, in its order."""
        return (
            self.trainable_variables,
            self.non_trainable_variables,
            self.optimizer.variables,
            self.metrics_variables,
        )

    def _adversarial_train_step(self, args, x, y, sample_weight):
        """Keras's own step on the adversarial batch: no clean pass at all."""
        x_adv, args = backend.attack_before_step(
            self._trainer_state_variables,
            args,
            lambda: self.adversarial_examples(x, y),
        )
        if self.layer_perturbation is not None:
            # The inputs stay; the layer adds the perturbation in Keras's step.
            data = keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
            with (
                self.layer_perturbation.applied(x_adv),
                self._in_step(StepMode(adversarial_only=True)),
            ):
                return self._keras_step((*args[:-1], data), x, x_adv, y, sample_weight)
        data = keras.utils.pack_x_y_sample_weight(x_adv, y, sample_weight)
        with self._in_step(StepMode(adversarial_only=True)):
            return self._keras_step((*args[:-1], data), x, x_adv, y, sample_weight)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        # Keras's step calls this with its own arguments: the step's mode
        # (set around Keras's step by `_in_step`) is passed on explicitly.
        return self._objective_loss(
            x, y, y_pred, sample_weight, training, self._step_mode
        )

    def _objective_loss(self, x, y, y_pred, sample_weight, training, mode):
        """The objective's loss for a batch, in the step's `mode` (`StepMode`).

        Records `clean_loss`, `adv_loss` and the `adv_` metrics on the way.
        """
        if mode.adversarial_only:  # x and y_pred are adversarial
            adv = super().compute_loss(x, y, y_pred, sample_weight, training=training)
            self.record_losses(x, None, adv)
            self.record_adversarial_metrics(y, y_pred, sample_weight)
            return self.objective.combine(None, adv, None, y_pred)
        clean = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        if not training and not self.evaluate_adversarial:
            self.record_losses(x, clean)
            return clean
        x_adv = mode.x_adv if training else None
        if training and self.objective.uses_trajectory:  # FreeLB
            if x_adv is None:
                x_adv = self.adversarial_examples(x, y, y_pred, trajectory=True)
            adv, y_pred_adv = self._trajectory_loss(x, x_adv, y, sample_weight)
            self.record_losses(x, clean, adv)
            self.record_adversarial_metrics(y, y_pred_adv, sample_weight)
            return self.objective.combine(clean, adv, y_pred, y_pred_adv)
        if x_adv is None:
            x_adv = self.adversarial_examples(x, y, y_pred)
        y_pred_adv = self._forward_adversarial(x, x_adv, training)
        adv = super().compute_loss(
            x_adv, y, y_pred_adv, sample_weight, training=training
        )
        self.record_losses(x, clean, adv)
        self.record_adversarial_metrics(y, y_pred_adv, sample_weight)
        if self.objective.needs_labels:  # MART: its own per-example terms
            return self.objective.combine(
                clean, adv, y_pred, y_pred_adv, y=y, sample_weight=sample_weight
            )
        loss = self.objective.combine(clean, adv, y_pred, y_pred_adv)
        if training and self.objective.penalty is not None:  # GradAlign
            loss = loss + self._penalty(x, y)
        return loss

    def _penalty(self, x, y):
        """The objective's term computed from the clean inputs (GradAlign)."""
        if isinstance(x, (dict, list, tuple)):
            raise ValueError(
                f"Objective {self.objective!r} takes the input gradient of a "
                f"single input; this model takes {type(x).__name__} inputs."
            )
        epsilon = self.attack.epsilon * ops.cast(self.epsilon_scale, "float32")
        return self.objective.penalty(
            lambda inputs: self._forward(inputs, training=self.attack_training),
            x,
            y,
            epsilon,
            self.attack.norm,
            self.attack.seed_generator,
        )

    def _trajectory_loss(self, x, points, y, sample_weight):
        """The mean compiled loss over the attack's points (stacked on the
        first axis), and the outputs at the last point (for the metrics)."""
        values, outputs = [], None
        for k in range(points.shape[0]):  # K is static: the attack's steps
            outputs = self._forward_adversarial(x, points[k], training=True)
            values.append(
                super().compute_loss(x, y, outputs, sample_weight, training=True)
            )
        return ops.mean(ops.stack(values)), outputs

    def record_losses(self, x, clean, adv=None, total=None):
        """Updates `clean_loss`, `adv_loss` and (with `total`) Keras's `loss`."""
        batch = ops.shape(keras.tree.flatten(x)[0])[0]
        pairs = [(self.clean_loss_tracker, clean), (self.adv_loss_tracker, adv)]
        if total is not None:  # Keras's own step records it otherwise
            pairs.append((keras_internals.loss_tracker(self), total))
        for tracker, value in pairs:
            if value is not None:
                value = backend.unscale_for_distribution(value)
                tracker.update_state(value, sample_weight=batch)

    def record_adversarial_metrics(self, y, y_pred_adv, sample_weight):
        """Updates the `adv_` counterparts of the compiled metrics."""
        if self.adv_compile_metrics is not None:
            self.adv_compile_metrics.update_state(
                y, ops.stop_gradient(y_pred_adv), sample_weight
            )

    def _forward_adversarial(self, x, x_adv, training):
        """The model's outputs on the adversarial batch `adversarial_examples`
        gave: `x_adv` itself, or `x` with the perturbation at the layer."""
        if self.layer_perturbation is None:
            return self._forward(x_adv, training=training)
        return self.layer_perturbation.forward(
            lambda inputs: self._forward(inputs, training=training), x, x_adv
        )

    def adversarial_examples(self, x, y, y_pred=None, trajectory=False):
        """Perturbed inputs for a batch, against the current weights.

        With `perturb` at a layer, the perturbation of that layer's output
        instead (behind `stop_gradient`; see `_forward_adversarial`). With
        `trajectory`, every point the (PGD) attack visits, stacked on a new
        first axis (`PGD.trajectory`; the FreeLB objective trains on them).
        """
        attack, targets = self._training_attack(), y
        if self.objective.attack_loss is not None:  # TRADES: move away from f(x)
            targets = ops.stop_gradient(y_pred)
        epsilon = self.attack.epsilon * ops.cast(self.epsilon_scale, "float32")

        def forward(inputs):
            return self._forward(inputs, training=self.attack_training)

        def run(fwd, start):
            if trajectory:
                return attack.trajectory(fwd, start, targets, epsilon)
            if self.per_token:  # rows are tokens, not examples: no batch check
                return ops.stop_gradient(attack.perturb(fwd, start, targets, epsilon))
            return attack(fwd, start, targets, epsilon=epsilon, check_values=False)

        if self.layer_perturbation is not None:
            return self.layer_perturbation.attack(
                run, forward, x, self.relative_budget, self.per_token
            )
        if trajectory and isinstance(x, (dict, list, tuple)):
            raise ValueError(
                f"Objective {self.objective!r} perturbs a single input or a "
                "layer's output (perturb='embeddings'); this model takes "
                f"{type(x).__name__} inputs."
            )
        return self.inputs_to_perturb.apply(run, forward, x)

    def _training_attack(self):
        """`self.attack`, told what the compiled loss knows, sharing its seed.

        TRADES replaces the attack's loss with its KL term; a compiled loss
        that states `from_logits` spares the default attack loss detecting
        it on every step (a cost per attack step; see the README's
        Performance section).
        """
        if getattr(self, "_cached_attack", None) is not None:
            return self._cached_attack
        attack = self.attack
        from_logits = getattr(self.loss, "from_logits", None)
        needs_loss = self.objective.attack_loss is not None
        knows_logits = attack.from_logits is None and from_logits is not None
        at_layer = self.layer_perturbation is not None and attack.clip is not None
        if needs_loss or at_layer or (knows_logits and attack.loss is None):
            overrides = {"from_logits": bool(from_logits)} if knows_logits else {}
            if needs_loss:
                overrides["loss"] = self.objective.attack_loss
            if at_layer:
                overrides["clip"] = None  # a layer's outputs are unbounded
            attack = attack.clone(**overrides)
            attack.seed_generator = self.attack.seed_generator
        self._cached_attack = attack
        return attack

    def get_config(self):
        return {
            **super().get_config(),
            "attack": keras.saving.serialize_keras_object(self.attack),
            "objective": keras.saving.serialize_keras_object(self.objective),
            "attack_training": self.attack_training,
            "adv_warmup": self.schedule.warmup,
            "epsilon_ramp": self.schedule.ramp,
            "evaluate_adversarial": self.evaluate_adversarial,
            "perturb": self._layer_spec or self.inputs_to_perturb.names,
            "relative_budget": self.relative_budget,
            "per_token": self.per_token,
            "shared_pass": self.shared_pass,
            "log_clean": self.log_clean,
            "awp_gamma": self.awp_gamma,
            "awp_warmup": self.awp_schedule.warmup,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        adv = {key: config.pop(key) for key in _ADV_ARGS if key in config}
        adv["attack"] = deserialize(adv["attack"], "the attack", custom_objects)
        adv["objective"] = deserialize(
            adv["objective"], "the objective", custom_objects
        )
        inputs, outputs = model_wrapping.functional_from_config(config, custom_objects)
        return cls(inputs, outputs, name=config.get("name"), **adv)
