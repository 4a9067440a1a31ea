"""`AdversarialModel(perturb="embeddings")`: perturbing a text model's
token embeddings, since its token ids cannot be perturbed."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_adv import backend
from keras_adv.attacks import FGSM
from keras_adv.attacks import PGD
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
    history = model.fit(ids, y, epochs=3, batch_size=16, verbose=0).history
    assert history["adv_loss"][-1] < history["adv_loss"][0]
    assert all(
        a > c for a, c in zip(history["adv_loss"], history["clean_loss"], strict=True)
    )


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


def test_a_layer_of_another_model_and_log_clean_false_are_refused():
    with pytest.raises(ValueError, match="not part of this model"):
        AdversarialModel(
            model=text_model(),
            attack=FGSM(0.1),
            perturb=keras.layers.Embedding(VOCAB, DIM),
        )
    with pytest.raises(ValueError, match="log_clean=False"):
        AdversarialModel(
            model=text_model(),
            attack=FGSM(0.1),
            objective="madry",
            perturb="embeddings",
            log_clean=False,
        )
