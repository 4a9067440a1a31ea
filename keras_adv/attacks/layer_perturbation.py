"""Perturbing one layer's output instead of the model's inputs: text models.

Token ids cannot be perturbed, so adversarial training of a text model adds
the perturbation to the output of its token embedding (Miyato et al. 2016,
"Adversarial Training Methods for Semi-Supervised Text Classification",
arXiv:1605.07725; FreeLB, Zhu et al. 2020). `AdversarialModel(...,
perturb="embeddings")` finds the token embedding; `perturb=<layer name or
layer>` names any layer. The attack sees the perturbation `delta` as its
input `x`, starting from zeros: its gradient is the loss's gradient at the
layer's output, its norm is per example over the whole output (L2 over
every token and feature for FGM), and it is never clipped (embeddings are
unbounded). Positions the layer masks (`Embedding(mask_zero=True)`: the
padding), or a keras-hub model's `padding_mask` input marks as padding, are
multiplied by 0, so padding is never perturbed and takes no share of the
budget.

How: the layer's `call` is wrapped on that layer object only (no public
Keras API inserts an extra input into a built graph, nested models and
keras-hub backbones included): while a perturbation is set, the wrapper
returns `outputs + delta`; otherwise the layer computes what it did. One
wrapper per layer (`LayerPerturbation.of`), shared by training, monitoring
and evaluation.
Setting and reading happen inside one traced step (`tf.function`,
`jax.jit`) or eagerly (PyTorch), so the perturbation is a tensor of that
trace.
"""

import contextlib
import weakref

import keras
from keras import ops

from keras_adv import argument_validation as validation

EMBEDDINGS = "embeddings"


def find(model, perturb):
    """The layer `perturb` names inside `model`, or `None` for model inputs.

    Args:
        model: a built `keras.Model`.
        perturb: `"embeddings"` (the token embedding), a layer name, a
            `keras.layers.Layer` of the model, or anything else (`None`,
            input names, positions), which selects inputs instead.

    Raises:
        ValueError: for `"embeddings"` in a model without exactly one token
            embedding, or a layer object the model does not hold.
    """
    layers = list(_all_layers(model))
    if isinstance(perturb, keras.layers.Layer):
        if not any(layer is perturb for layer in layers):
            raise ValueError(
                f"Argument `perturb` is the layer {perturb.name!r}, which is not "
                "part of this model. Pass one of the model's own layers or its "
                "name."
            )
        return perturb
    if not isinstance(perturb, str) or perturb in _input_names(model):
        return None
    if perturb == EMBEDDINGS:
        return _token_embedding(model, layers)
    named = [layer for layer in layers if layer.name == perturb]
    return named[0] if named else None


def _all_layers(model):
    """Every layer of `model`, nested models' layers included, in order."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _input_names(model):
    names = set()
    structure = model.inputs or []
    for tensor in keras.tree.flatten(structure):
        names.add(getattr(tensor, "name", None))
    try:
        if isinstance(model.input, dict):
            names.update(model.input)
    except (AttributeError, ValueError):  # Sequential has only `inputs`
        pass
    return names


def _token_embedding(model, layers):
    # keras-hub backbones name theirs: `backbone.token_embedding`.
    for layer in [model, *layers]:
        found = getattr(layer, "token_embedding", None)
        if isinstance(found, keras.layers.Layer):
            return found
    embeddings = [
        layer for layer in layers if isinstance(layer, keras.layers.Embedding)
    ]
    if len(embeddings) == 1:
        return embeddings[0]
    names = [layer.name for layer in embeddings]
    raise ValueError(
        f"Argument `perturb={EMBEDDINGS!r}` needs one token embedding "
        f"(a keras.layers.Embedding); the model has {len(embeddings)}"
        + (f": {names}. Pass the name of the token embedding." if names else ".")
    )


_HOOKS = weakref.WeakKeyDictionary()  # layer -> its LayerPerturbation


def check_relative_budget(relative_budget, at_layer, perturb):
    """`relative_budget` as a bool, refused without a layer to be relative to."""
    relative_budget = validation.check_bool(relative_budget, "relative_budget")
    if relative_budget and not at_layer:
        raise ValueError(
            "Argument `relative_budget=True` scales the budget by the norm "
            "of a layer's output: give the layer with perturb='embeddings' "
            f"(or a layer name). Received: perturb={perturb!r}"
        )
    return relative_budget


def check_per_token(per_token, at_layer, perturb, attacks=()):
    """`per_token` as a bool, refused without a layer or with an attack that
    keeps per-example state (which a token-by-token attack cannot)."""
    per_token = validation.check_bool(per_token, "per_token")
    if per_token and not at_layer:
        raise ValueError(
            "Argument `per_token=True` gives each token of a layer's output its "
            "own budget; pass the layer, e.g. perturb='embeddings'. "
            f"Received: perturb={perturb!r}"
        )
    if per_token:
        for attack in attacks:
            if not attack.rowwise:
                raise ValueError(
                    f"Argument `per_token=True` attacks each token on its own, "
                    f"which {type(attack).__name__} cannot (it keeps a best point "
                    "or a target per example); use FGSM, PGD (restarts=1) or "
                    f"MIM. Received: attack={attack!r}"
                )
    return per_token


def at(model, perturb):
    """The `LayerPerturbation` of the layer `perturb` names in `model`.

    One per layer: an `AdversarialModel`, a monitor and an evaluation of the
    same model share it. Raises `ValueError` when `perturb` names no layer.
    """
    layer = find(model, perturb)
    if layer is None:
        raise ValueError(
            f"Argument `perturb` must name a layer of {model.name!r} "
            f"('{EMBEDDINGS}', a layer name or a layer). Received: "
            f"perturb={perturb!r}"
        )
    return LayerPerturbation.of(layer)


class _Reached(Exception):
    """Ends a forward pass at the layer (`start` reads what it captured;
    Keras re-raises a layer's exception with a new message, so the values
    do not travel in it)."""


class LayerPerturbation:
    """Adds a perturbation to one layer's output while one is set.

    Build it with `LayerPerturbation.of(layer)` (one per layer).

    Args:
        layer: the layer whose output is perturbed.
    """

    @classmethod
    def of(cls, layer):
        """The one `LayerPerturbation` of `layer` (made on first use)."""
        if layer not in _HOOKS:
            _HOOKS[layer] = cls(layer)
        return _HOOKS[layer]

    def __init__(self, layer):
        self.layer = layer
        self._delta = None
        self._capture = False
        self._captured = None  # (outputs, mask) of the capturing pass
        original = layer.call

        def call(*args, **kwargs):
            outputs = original(*args, **kwargs)
            if self._capture:  # `start`: the rest of the model is not needed
                mask = layer.compute_mask(args[0], None) if args else None
                self._captured = (outputs, mask)
                raise _Reached()
            if self._delta is None:
                return outputs
            return outputs + ops.cast(self._delta, outputs.dtype)

        layer.call = call

    @contextlib.contextmanager
    def applied(self, delta):
        """The layer adds `delta` to its output inside the block (blocks nest:
        an inner one's delta holds inside it, the outer one's again after)."""
        previous, self._delta = self._delta, delta
        try:
            yield
        finally:
            self._delta = previous

    def start(self, forward, x, relative=False, per_token=False):
        """`(zeros, scale)` for the layer's output on `x`.

        Runs the model only up to the layer (an exception ends the pass
        there; a traced step drops what it did not reach), so it costs
        the layers before it: the embedding lookup.

        The perturbation applied is the attack's times `scale` (`None`:
        times 1), which broadcasts against the output: 0 where the layer
        masks its output (`Embedding(mask_zero=True)`) or where a keras-hub
        `padding_mask` input is 0, else 1; with `relative`, times each
        example's norm of the (unmasked) output too (each token's, with
        `per_token`), so that a budget `eps` becomes `eps` times that norm.

        Args:
            forward: `inputs -> outputs` of the model.
            x: the batch's inputs.
            relative: budgets relative to each example's output norm.
                Defaults to `False` (absolute).
            per_token: norms per token (the last axis) instead of per
                example. Defaults to `False`.
        """
        self._capture = True
        try:
            forward(x)
        except _Reached:
            outputs, mask = self._captured
        else:
            raise ValueError(
                f"The layer {self.layer.name!r} to perturb did not run on the "
                "model's inputs: pass `perturb` a layer the forward pass reaches."
            )
        finally:
            self._capture, self._captured = False, None
        if mask is None and isinstance(x, dict) and "padding_mask" in x:
            mask = x["padding_mask"]
        zeros = ops.zeros(ops.shape(outputs), "float32")
        scale = None
        if mask is not None:
            scale = ops.cast(mask, "float32")
            while len(scale.shape) < len(zeros.shape):
                scale = ops.expand_dims(scale, -1)
        if relative:
            kept = ops.cast(outputs, "float32")
            kept = kept if scale is None else kept * scale
            axes = (-1,) if per_token else tuple(range(1, len(zeros.shape)))
            norms = ops.sqrt(ops.sum(ops.square(kept), axis=axes, keepdims=True))
            norms = ops.stop_gradient(norms)
            scale = norms if scale is None else scale * norms
        return zeros, scale

    def prepare(self, forward, x, relative=False, per_token=False):
        """`(zeros, forward_of_delta, applied)` for an attack at the layer.

        The attack starts from `zeros`; `forward_of_delta(delta)` runs the
        model with `applied(delta)` added at the layer; `applied` masks the
        padding (and with `relative` scales by each example's norm, see
        `start`), which is the perturbation as the model sees it.

        With `per_token`, the attack sees each token as an example: `zeros`
        is `(batch * tokens, features)`, so its norms, steps and
        projections are per token, and `applied` shapes its result (or a
        stack of them, a trajectory) back to the layer's output.
        """
        zeros, scale = self.start(forward, x, relative, per_token)
        shape = ops.shape(zeros)
        if per_token:
            if len(zeros.shape) < 3:
                raise ValueError(
                    "Argument `per_token=True` needs a layer output of shape "
                    "(batch, tokens, features); the output of "
                    f"{self.layer.name!r} has shape {tuple(zeros.shape)}."
                )
            zeros = ops.reshape(zeros, (-1, zeros.shape[-1]))

        def applied(delta):
            if per_token:  # the rows back to tokens, a trajectory's axis kept
                delta = ops.reshape(delta, tuple(delta.shape[:-2]) + tuple(shape))
            return delta if scale is None else delta * scale

        def forward_of_delta(delta):
            return self.forward(forward, x, applied(delta))

        return zeros, forward_of_delta, applied

    def attack(self, attack_fn, forward, x, relative=False, per_token=False):
        """The perturbation `attack_fn(forward_of_delta, zeros)` finds on `x`,
        as applied (`prepare`): zero at masked positions, with `relative`
        scaled by each example's norm, with `per_token` a budget per token.
        """
        zeros, forward_of_delta, applied = self.prepare(forward, x, relative, per_token)
        return applied(attack_fn(forward_of_delta, zeros))

    def forward(self, forward, x, delta):
        """`forward(x)` with `delta` added at the layer."""
        with self.applied(delta):
            return forward(x)
