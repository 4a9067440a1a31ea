"""`AdversarialModel(perturb="embeddings")`: perturbing a text model's
token embeddings, since its token ids cannot be perturbed."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_adv import backend
from keras_adv.attacks import APGD
from keras_adv.attacks import FGSM
from keras_adv.attacks import PGD
from keras_adv.callbacks import AdversarialMonitor
from keras_adv.evaluation import evaluate_robustness
from keras_adv.training import AdversarialModel

VOCAB, LENGTH, DIM, CLASSES = 20, 6, 4, 3
CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def text_model(seed=0):
    """ids -> Embedding(mask_zero) -> masked mean -> logits."""
    keras.utils.set_random_seed(seed)
    ids = keras.Input((LENGTH,), dtype="int32", name="ids")
    embedded = keras.layers.Embedding(VOCAB, DIM, mask_zero=True, name="tokens")(ids)
    pooled = keras.layers.GlobalAveragePooling1D()(embedded)
    return keras.Model(ids, keras.layers.Dense(CLASSES)(pooled), name="text")


def batch():
    ids = np.array(
        [[3, 5, 7, 0, 0, 0], [1, 2, 3, 4, 5, 6], [9, 9, 0, 0, 0, 0]], "int32"
    )  # 0 is padding
    return ids, np.array([0, 1, 2], "int32")


def numpy(x):
    return ops.convert_to_numpy(x)


def fgm(inner, eps, relative=False):
    """`inner` wrapped for FGM at its embeddings, compiled."""
    model = AdversarialModel(
        model=inner,
        attack=FGSM(eps, norm="l2"),
        perturb="embeddings",
        relative_budget=relative,
    )
    model.compile("sgd", CE)
    return model


def delta_of(model, ids, y):
    return numpy(
        model.adversarial_examples(ops.convert_to_tensor(ids), ops.convert_to_tensor(y))
    )


def test_fgm_is_the_closed_form_eps_g_over_norm_g_on_the_embedding_output():
    inner = text_model()
    model = AdversarialModel(
        model=inner, attack=FGSM(0.5, norm="l2"), perturb="embeddings"
    )
    model.compile("sgd", CE)
    ids, y = batch()
    embedding = inner.get_layer("tokens")
    pooling, dense = inner.layers[2], inner.layers[3]
    mask = numpy(ids) != 0

    def loss(embedded):  # the model after its embedding, by hand
        pooled = pooling(embedded, mask=ops.convert_to_tensor(mask))
        return ops.sum(
            keras.losses.sparse_categorical_crossentropy(y, dense(pooled), True)
        )

    _, g = backend.value_and_input_grad(loss, embedding(ids))
    g = numpy(g)
    norms = np.sqrt((g**2).sum(axis=(1, 2), keepdims=True))
    expected = 0.5 * g / norms
    delta = delta_of(model, ids, y)
    assert delta.shape == (3, LENGTH, DIM)  # the embedding output's shape
    np.testing.assert_allclose(delta, expected, atol=1e-5)
    norms = np.linalg.norm(delta.reshape(3, -1), axis=1)
    np.testing.assert_allclose(norms, 0.5, rtol=1e-6)  # the budget


@pytest.mark.filterwarnings("ignore:Layer 'flatten")
def test_padding_is_never_perturbed_even_where_the_model_ignores_the_mask():
    """Flatten ignores masks: the padding's gradient is not zero by itself."""
    keras.utils.set_random_seed(0)
    ids_in = keras.Input((LENGTH,), dtype="int32")
    embedded = keras.layers.Embedding(VOCAB, DIM, mask_zero=True)(ids_in)
    logits = keras.layers.Dense(CLASSES)(keras.layers.Flatten()(embedded))
    inner = keras.Model(ids_in, logits)
    model = AdversarialModel(
        model=inner, attack=PGD(1.0, norm="l2", steps=3), perturb="embeddings"
    )
    model.compile("sgd", CE)
    ids, y = batch()
    delta = delta_of(model, ids, y)
    embedded = inner.layers[1](ids)
    seen = numpy(
        model.layer_perturbation.forward(
            lambda x: inner.layers[1](x), ops.convert_to_tensor(ids), delta
        )
    )
    added = seen - numpy(embedded)
    assert np.all(added[ids == 0] == 0)  # padding: nothing added
    assert np.all(np.abs(added[ids != 0]).sum(axis=-1) > 0)  # tokens: moved
    norms = np.linalg.norm(added.reshape(3, -1), axis=1)
    assert np.all(norms <= 1.0 + 1e-5) and np.all(norms > 0.5)  # in the ball


def test_the_ids_are_left_alone_and_predict_is_clean():
    model = AdversarialModel(
        model=text_model(), attack=FGSM(0.5, norm="l2"), perturb="embeddings"
    )
    model.compile("sgd", CE)
    ids, _ = batch()
    np.testing.assert_allclose(
        model.predict(ids, verbose=0), text_model().predict(ids, verbose=0), atol=1e-6
    )


def test_fgm_training_moves_the_weights_and_logs_the_adversarial_loss():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, (64, LENGTH)).astype("int32")
    y = (ids[:, 0] % CLASSES).astype("int32")
    model = AdversarialModel(
        model=text_model(), attack=FGSM(1.0, norm="l2"), perturb="embeddings"
    )
    model.compile(keras.optimizers.Adam(0.05), CE, metrics=["accuracy"])
    history = model.fit(
        ids, y, epochs=3, batch_size=16, validation_data=(ids, y), verbose=0
    ).history
    assert history["adv_loss"][-1] < history["adv_loss"][0]
    assert all(
        a > c for a, c in zip(history["adv_loss"], history["clean_loss"], strict=True)
    )
    assert history["val_adv_loss"][-1] > history["val_clean_loss"][-1]
    logs = model.evaluate(ids, y, verbose=0, return_dict=True)
    assert logs["adv_accuracy"] <= logs["accuracy"]


def test_a_layer_can_be_named_or_given_and_the_file_round_trips(tmp_path):
    inner = text_model()
    for perturb in ("tokens", inner.get_layer("tokens")):
        model = AdversarialModel(
            model=inner, attack=FGSM(0.5, norm="l2"), perturb=perturb
        )
        assert model.layer_perturbation.layer is inner.get_layer("tokens")
    model.compile("sgd", CE)
    ids, y = batch()
    path = str(tmp_path / "text.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config()["perturb"] == "tokens"
    np.testing.assert_allclose(
        delta_of(loaded, ids, y), delta_of(model, ids, y), atol=1e-5
    )


def test_which_embedding_is_ambiguous_is_refused_naming_them():
    ids = keras.Input((LENGTH,), dtype="int32")
    tokens = keras.layers.Embedding(VOCAB, DIM, name="tok")(ids)
    positions = keras.layers.Embedding(VOCAB, DIM, name="pos")(ids)
    pooled = keras.layers.GlobalAveragePooling1D()(tokens + positions)
    inner = keras.Model(ids, keras.layers.Dense(CLASSES)(pooled))
    with pytest.raises(ValueError, match=r"\['tok', 'pos'\]"):
        AdversarialModel(model=inner, attack=FGSM(0.1), perturb="embeddings")
    model = AdversarialModel(model=inner, attack=FGSM(0.1), perturb="tok")
    assert model.layer_perturbation.layer.name == "tok"


def test_a_layer_of_another_model_is_refused():
    with pytest.raises(ValueError, match="not part of this model"):
        AdversarialModel(
            model=text_model(),
            attack=FGSM(0.1),
            perturb=keras.layers.Embedding(VOCAB, DIM),
        )


@pytest.mark.parametrize("awp_gamma", [0.0, 0.01])
def test_log_clean_false_at_a_layer_trains_the_same_weights(awp_gamma):
    """madry at the embeddings: Keras's step on the ids with the perturbation
    added at the layer, no clean pass; the same weights and adversarial logs
    as with the clean pass for the logs (and with AWP, whose own pass at the
    layer nests inside the step's)."""
    ids, y = batch()
    trained = []
    for log_clean in (True, False):
        inner = text_model()
        model = AdversarialModel(
            model=inner, attack=PGD(0.5, norm="l2", steps=3, seed=0),
            objective="madry", perturb="embeddings", log_clean=log_clean,
            awp_gamma=awp_gamma,
        )  # fmt: skip
        model.compile(keras.optimizers.Adam(0.05), CE, metrics=["accuracy"])
        history = model.fit(ids, y, epochs=3, batch_size=3, verbose=0).history
        trained.append(([numpy(w) for w in inner.weights], history))
    (full, full_logs), (fast, fast_logs) = trained
    for a, b in zip(full, fast, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert set(full_logs) - set(fast_logs) == {"clean_loss", "accuracy"}
    for key in ("loss", "adv_loss", "adv_accuracy"):
        np.testing.assert_allclose(fast_logs[key], full_logs[key], rtol=1e-5)
    assert not np.allclose(fast[0], text_model().weights[0])  # it trained


def test_the_monitor_logs_the_perturbation_norm_at_the_layer():
    ids, y = batch()
    model = text_model()
    model.compile("sgd", CE)
    monitor = AdversarialMonitor(
        (ids, y), attack=FGSM(0.5, norm="l2"), perturb="embeddings"
    )
    history = model.fit(ids, y, epochs=1, verbose=0, callbacks=[monitor]).history
    assert history["adv_perturbation_l2"][0] == pytest.approx(0.5, rel=1e-5)
    assert 0.0 <= history["adv_flip_rate"][0] <= 1.0


def test_the_monitor_of_a_text_adversarial_model_attacks_where_it_trains():
    ids, y = batch()
    model = AdversarialModel(
        model=text_model(), attack=FGSM(0.5, norm="l2"), perturb="embeddings"
    )
    model.compile("sgd", CE)
    values = AdversarialMonitor((ids, y)).compute(model)  # ids: no perturb given
    assert values["adv_perturbation_l2"] == pytest.approx(0.5, rel=1e-5)


def test_evaluate_robustness_attacks_the_embeddings_and_checks_there():
    ids, y = batch()
    model = text_model()
    attacks = [PGD(0.1, norm="l2", steps=5, seed=0)]
    result = evaluate_robustness(
        model, (ids, y), epsilons=[0.1, 5.0], attacks=attacks, checks=False,
        perturb="embeddings",
    )  # fmt: skip
    assert result.num_examples == 3
    assert result.worst_case[1] <= result.worst_case[0] <= result.clean_accuracy
    with pytest.raises(ValueError, match="perturb='embeddings'"):
        evaluate_robustness(model, (ids, y), epsilons=[0.1], attacks=attacks)
    # The sanity checks run at the layer, all but the one that needs a clip.
    checked = evaluate_robustness(
        model, (ids, y), epsilons=[0.1, 5.0], attacks=attacks, perturb="embeddings",
        seed=0,
    )  # fmt: skip
    names = [check.name for check in checked.checks]
    assert names == [
        "outputs_are_logits", "deterministic", "zero_gradients",
        "accuracy_falls_with_epsilon", "iterative_beats_fgsm",
        "more_iterations_change_little", "black_box_not_stronger",
    ]  # fmt: skip
    zero = checked.checks[2]
    assert zero.passed and "'tokens' output gradient" in zero.message


def test_the_zero_gradient_check_sees_a_mask_behind_the_embeddings():
    """Gradients masked after the embedding: zero at the layer, as reported."""
    from tests.conftest import GradientMask

    keras.utils.set_random_seed(0)
    ids_in = keras.Input((LENGTH,), dtype="int32")
    embedded = keras.layers.Embedding(VOCAB, DIM, name="tokens")(ids_in)
    pooled = keras.layers.GlobalAveragePooling1D()(GradientMask()(embedded))
    model = keras.Model(ids_in, keras.layers.Dense(CLASSES)(pooled))
    ids, y = batch()
    with pytest.warns(Warning, match="zero"):
        result = evaluate_robustness(
            model, (ids, y), epsilons=[0.5], perturb="embeddings", seed=0,
            attacks=[PGD(0.5, norm="l2", steps=3, seed=0)],
        )  # fmt: skip
    zero = next(c for c in result.checks if c.name == "zero_gradients")
    assert not zero.passed and zero.evidence["zero_gradient_share"] == 1.0


def tiny_bert_classifier():
    keras_hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=LENGTH,
    )  # fmt: skip
    return keras_hub.models.BertTextClassifier(
        backbone=backbone, num_classes=CLASSES, preprocessor=None
    )


def bert_batch():
    rng = np.random.default_rng(0)
    padding = np.array([[1] * 4 + [0] * 2, [1] * LENGTH, [1] * 2 + [0] * 4] * 4)
    return {
        "token_ids": rng.integers(1, 50, (12, LENGTH)).astype("int32") * padding,
        "segment_ids": np.zeros((12, LENGTH), "int32"),
        "padding_mask": padding.astype("int32"),
    }, np.arange(12, dtype="int32") % CLASSES


@pytest.mark.slow
def test_a_keras_hub_classifier_trains_with_fgm_on_its_token_embedding(tmp_path):
    classifier = tiny_bert_classifier()
    model = AdversarialModel(
        model=classifier, attack=FGSM(0.5, norm="l2"), perturb="embeddings"
    )
    assert model.layer_perturbation.layer is classifier.backbone.token_embedding
    model.compile(keras.optimizers.Adam(1e-3), CE)
    x, y = bert_batch()
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0).history
    assert np.isfinite(history["adv_loss"]).all()
    tensors = {k: ops.convert_to_tensor(v) for k, v in x.items()}
    delta = numpy(model.adversarial_examples(tensors, ops.convert_to_tensor(y)))
    assert np.all(delta[x["padding_mask"] == 0] == 0)  # padding never moves
    norms = np.linalg.norm(delta.reshape(len(y), -1), axis=1)
    np.testing.assert_allclose(norms, 0.5, rtol=1e-5)
    path = str(tmp_path / "bert.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config()["perturb"] == "embeddings"
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5
    )


def test_freelb_steps_along_the_mean_weight_gradient_over_its_ascent_points():
    """FreeLB (Zhu et al. 2020, Algorithm 1), computed by hand on a tiny model."""
    keras.utils.set_random_seed(1)
    ids_in = keras.Input((LENGTH,), dtype="int32")
    embedded = keras.layers.Embedding(VOCAB, DIM, name="tokens")(ids_in)
    pooled = keras.layers.GlobalAveragePooling1D()(embedded)
    inner = keras.Model(ids_in, keras.layers.Dense(CLASSES, name="head")(pooled))
    ids, y = batch()
    table = numpy(inner.get_layer("tokens").embeddings)
    kernel, bias = (numpy(w) for w in inner.get_layer("head").weights)
    steps, eps, alpha = 3, 0.5, 0.3

    tokens, bias = ops.convert_to_tensor(table[ids]), ops.convert_to_tensor(bias)

    def logits(delta, w):
        delta, w = ops.convert_to_tensor(delta), ops.convert_to_tensor(w)
        return ops.matmul(ops.mean(tokens + delta, axis=1), w) + bias

    def losses(delta, w):
        return keras.losses.sparse_categorical_crossentropy(y, logits(delta, w), True)

    delta, points = np.zeros((3, LENGTH, DIM), "float32"), []
    for _ in range(steps):  # delta_0 = 0 (no random start), then ascent
        points.append(delta)
        _, g = backend.value_and_input_grad(lambda d: ops.sum(losses(d, kernel)), delta)
        g = numpy(g)
        delta = (
            delta + alpha * g / np.linalg.norm(g.reshape(3, -1), axis=1)[:, None, None]
        )
        norms = np.linalg.norm(delta.reshape(3, -1), axis=1)[:, None, None]
        delta = (delta * np.minimum(1.0, eps / norms)).astype("float32")

    def weight_grad(point):
        mean_loss = lambda w: ops.mean(losses(point, w))  # noqa: E731
        return numpy(backend.value_and_input_grad(mean_loss, kernel)[1])

    grads = [weight_grad(point) for point in points]
    model = AdversarialModel(
        model=inner,
        attack=PGD(eps, norm="l2", steps=steps, step_size=alpha, random_start=False),
        objective="freelb",
        perturb="embeddings",
    )
    model.compile(keras.optimizers.SGD(1.0), CE)
    model.fit(ids, y, epochs=1, batch_size=3, shuffle=False, verbose=0)
    step = kernel - numpy(inner.get_layer("head").kernel)  # lr 1: the gradient
    np.testing.assert_allclose(step, np.mean(grads, axis=0), atol=1e-5)
    assert not np.allclose(step, grads[0], atol=1e-5)  # not the clean gradient


def test_freelb_needs_a_pgd_attack():
    with pytest.raises(ValueError, match="PGD"):
        AdversarialModel(
            model=text_model(),
            attack=APGD(0.5, norm="l2"),
            objective="freelb",
            perturb="embeddings",
        )


@pytest.mark.parametrize(
    "relative, per_token", [(False, False), (True, False), (False, True)]
)
def test_the_two_pass_step_at_the_embeddings_equals_the_general_step(
    relative, per_token
):
    """FGM-mixed takes the embedding gradient from the clean backward pass."""
    ids, y = batch()
    trained = []
    for shared_pass in (True, False):
        inner = text_model()
        model = AdversarialModel(
            model=inner,
            attack=FGSM(0.5, norm="l2"),
            perturb="embeddings",
            relative_budget=relative,
            per_token=per_token,
            shared_pass=shared_pass,
        )
        # Adam: an embedding's repeated rows must reach it as Keras's own
        # step gives them (TensorFlow: sparse slices, each row once per use).
        model.compile(keras.optimizers.Adam(0.1), CE)
        history = model.fit(ids, y, epochs=3, batch_size=3, verbose=0).history
        trained.append(([numpy(w) for w in inner.weights], history["adv_loss"]))
    (shared, shared_adv), (general, general_adv) = trained
    for a, b in zip(shared, general, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(shared_adv, general_adv, rtol=1e-5)
    assert not np.allclose(shared[0], text_model().weights[0])  # it trained


def test_a_relative_budget_is_a_share_of_each_sequences_embedding_norm():
    inner = text_model()
    ids, y = batch()
    embedded = numpy(inner.get_layer("tokens")(ids)) * (ids != 0)[..., None]
    norms = np.linalg.norm(embedded.reshape(3, -1), axis=1)
    models = {relative: fgm(inner, 0.1, relative) for relative in (True, False)}
    deltas = {r: delta_of(m, ids, y).reshape(3, -1) for r, m in models.items()}
    np.testing.assert_allclose(
        np.linalg.norm(deltas[True], axis=1), 0.1 * norms, rtol=1e-5
    )
    direction = deltas[True] / np.linalg.norm(deltas[True], axis=1, keepdims=True)
    np.testing.assert_allclose(direction, deltas[False] / 0.1, atol=1e-5)  # FGM's
    model = models[True]
    values = AdversarialMonitor((ids, y)).compute(model)  # the model's setting
    assert values["adv_perturbation_l2"] == pytest.approx(0.1 * norms.mean(), rel=1e-4)
    assert model.get_config()["relative_budget"] is True


def test_a_relative_budget_needs_a_layer():
    with pytest.raises(ValueError, match="perturb='embeddings'"):
        AdversarialModel(model=text_model(), attack=FGSM(0.1), relative_budget=True)
    ids, y = batch()
    with pytest.raises(ValueError, match="perturb='embeddings'"):  # not ignored
        evaluate_robustness(
            text_model(), (ids.astype("float32") / VOCAB, y), epsilons=[0.1],
            attacks=[FGSM(0.1)], checks=False, relative_budget=True,
        )  # fmt: skip


def hand_embedding_gradient(inner, ids, y):
    """The crossentropy's gradient at the embedding output, by hand."""
    embedding = inner.get_layer("tokens")
    pooling, dense = inner.layers[2], inner.layers[3]
    mask = ops.convert_to_tensor(numpy(ids) != 0)

    def loss(embedded):
        pooled = pooling(embedded, mask=mask)
        return ops.sum(
            keras.losses.sparse_categorical_crossentropy(y, dense(pooled), True)
        )

    return numpy(backend.value_and_input_grad(loss, embedding(ids))[1])


@pytest.mark.parametrize("relative", [False, True])
def test_per_token_fgm_gives_each_token_the_budget(relative):
    """per_token=True: delta_t = eps * g_t / ||g_t|| for every token t (times
    the token's own norm when relative), zero at the padding."""
    inner = text_model()
    ids, y = batch()
    model = AdversarialModel(
        model=inner, attack=FGSM(0.5, norm="l2"), perturb="embeddings",
        per_token=True, relative_budget=relative,
    )  # fmt: skip
    model.compile("sgd", CE)
    g = hand_embedding_gradient(inner, ids, y)
    tokens = ids != 0
    scale = 0.5
    if relative:
        embedded = numpy(inner.get_layer("tokens")(ids))
        scale = 0.5 * np.linalg.norm(embedded, axis=-1, keepdims=True)
    lengths = np.linalg.norm(g, axis=-1, keepdims=True)  # 0 at the padding
    expected = scale * g / np.maximum(lengths, 1e-30)
    expected = np.where(tokens[..., None], expected, 0.0)
    delta = delta_of(model, ids, y)
    np.testing.assert_allclose(delta, expected, atol=1e-5)
    norms = np.linalg.norm(delta, axis=-1)
    budget = np.broadcast_to(scale, lengths.shape)[..., 0]
    np.testing.assert_allclose(norms[tokens], budget[tokens], rtol=1e-5)
    assert np.all(norms[~tokens] == 0)
    # the whole-sequence budget spreads eps over the tokens instead
    whole = delta_of(fgm(inner, 0.5, relative), ids, y)
    assert np.all(np.linalg.norm(whole, axis=-1)[tokens] < 0.5 - 1e-3) or relative
    assert model.get_config()["per_token"] is True


def test_per_token_pgd_trains_freelb_and_evaluates_within_each_tokens_ball():
    ids, y = batch()
    inner = text_model()
    model = AdversarialModel(
        model=inner, attack=PGD(0.3, norm="l2", steps=3, seed=0),
        objective="freelb", perturb="embeddings", per_token=True,
    )  # fmt: skip
    model.compile("sgd", CE)
    delta = delta_of(model, ids, y)
    norms = np.linalg.norm(delta, axis=-1)
    assert np.all(norms <= 0.3 + 1e-5) and np.all(norms[ids == 0] == 0)
    assert norms[ids != 0].max() > 0.2  # each token near its own budget
    history = model.fit(ids, y, epochs=2, batch_size=3, verbose=0).history
    assert np.all(np.isfinite(history["adv_loss"]))
    result = evaluate_robustness(
        inner, (ids, y), epsilons=[0.3, 50.0], attacks=[PGD(0.3, norm="l2", steps=5)],
        checks=False, perturb="embeddings", per_token=True,
    )  # fmt: skip
    assert result.worst_case[1] <= result.clean_accuracy
    values = AdversarialMonitor((ids, y)).compute(model)  # the model's setting
    # norms are logged per sequence: up to sqrt(tokens) times each token's
    assert values["adv_perturbation_l2"] > 0.3 + 1e-3


def test_per_token_is_refused_where_it_cannot_hold():
    ids, y = batch()
    with pytest.raises(ValueError, match="per_token=True.*perturb='embeddings'"):
        AdversarialModel(model=text_model(), attack=FGSM(0.1), per_token=True)
    with pytest.raises(ValueError, match="APGD cannot"):
        AdversarialModel(
            model=text_model(), attack=APGD(0.1, norm="l2"), perturb="embeddings",
            per_token=True,
        )  # fmt: skip
    with pytest.raises(ValueError, match="PGD cannot"):
        evaluate_robustness(
            text_model(), (ids, y), epsilons=[0.1], checks=False,
            attacks=[PGD(0.1, norm="l2", steps=2, restarts=2)],
            perturb="embeddings", per_token=True,
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"\(batch, tokens, features\)"):
        inner = text_model()
        model = AdversarialModel(
            model=inner, attack=FGSM(0.1, norm="l2"), perturb=inner.layers[2],
            per_token=True,
        )  # fmt: skip
        model.compile("sgd", CE)
        delta_of(model, ids, y)


@pytest.mark.parametrize("per_token", [False, True])
def test_freelb_in_k_passes_equals_the_general_step(per_token, monkeypatch):
    """FreeLB's shared step (each pass gives the point's weight gradient and
    the next ascent step, as in Zhu et al.'s Algorithm 1) trains exactly as
    the general step, which takes the ascent and the weight gradients in
    separate passes: same weights and logs after a few epochs of Adam, from
    a random start."""
    from keras_adv.training import two_pass_step

    ran = []
    step = two_pass_step.trajectory_train_step
    monkeypatch.setattr(
        two_pass_step,
        "trajectory_train_step",
        lambda *args: ran.append(1) or step(*args),  # traced or eager: >= once
    )
    ids, y = batch()
    trained = []
    for shared_pass in (True, False):
        ran.clear()
        inner = text_model()
        model = AdversarialModel(
            model=inner,
            attack=PGD(0.4, norm="l2", steps=3, step_size=0.2, seed=3),
            objective="freelb",
            perturb="embeddings",
            per_token=per_token,
            shared_pass=shared_pass,
        )
        model.compile(keras.optimizers.Adam(0.05), CE, metrics=["accuracy"])
        history = model.fit(ids, y, epochs=3, batch_size=3, verbose=0).history
        trained.append(([numpy(w) for w in inner.weights], history))
        assert bool(ran) == shared_pass  # the K-pass step ran, or did not
    (shared, shared_logs), (general, general_logs) = trained
    for a, b in zip(shared, general, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for key in ("adv_loss", "clean_loss", "loss", "accuracy", "adv_accuracy"):
        np.testing.assert_allclose(shared_logs[key], general_logs[key], rtol=1e-5)
    assert not np.allclose(shared[0], text_model().weights[0])  # it trained


@pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="counts eager calls (traced elsewhere)"
)
def test_freelb_in_k_passes_takes_k_passes():
    """K forward-backward passes for the update (plus the clean forward for
    the logs), against 2K - 1 + K for the general step."""
    ids, y = batch()
    counts = {}
    for shared_pass in (True, False):
        inner = text_model()
        calls = []
        dense = inner.layers[-1]
        original = dense.call

        def counted(*args, _original=original, _calls=calls, **kwargs):
            _calls.append(1)
            return _original(*args, **kwargs)

        dense.call = counted
        model = AdversarialModel(
            model=inner, attack=PGD(0.4, norm="l2", steps=4, seed=0),
            objective="freelb", perturb="embeddings", shared_pass=shared_pass,
        )  # fmt: skip
        model.compile("sgd", CE)
        model.train_on_batch(ids, y)
        calls.clear()
        model.train_on_batch(ids, y)
        counts[shared_pass] = len(calls)
    assert counts[True] == 1 + 4  # the clean forward, then K passes
    assert counts[False] == 1 + 3 + 4  # clean, K - 1 ascent steps, K passes
