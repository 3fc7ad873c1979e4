"""Texts -> features, training on a slice of the shipped sample, saving and
loading a classifier, and the errors for mismatched or damaged files."""

from __future__ import annotations

import json
import logging

import jax
import numpy as np
import pytest

from jaxseq import models, text
from jaxseq.data import imdb


def test_featurize_counts_truncated_and_empty_texts(caplog):
    vocab = text.build_vocabulary(["a good film", "a bad film"], text.word_tokenizer())
    texts = ["a good good film indeed", "", "bad", "   "]
    with caplog.at_level(logging.INFO, logger="jaxseq.models"):
        f = models.featurize(vocab, models.InputSpec(maxlen=3), texts, what="reviews")
    assert f.ids.shape == (4, 3) and f.ids.dtype == np.int32
    assert f.lengths.tolist() == [3, 0, 1, 0]
    assert (f.truncated, f.empty) == (1, 2)
    # truncating="pre" keeps the end of a long review: "good film indeed"
    assert text.decode(vocab, f.ids[0]) == ["good", "film", "[UNK]"]
    assert (
        "reviews: 1 of 4 longer than 3 ids were truncated (kept the last 3)"
        in caplog.text
    )
    assert "reviews: 2 of 4 gave no token" in caplog.text
    head = models.featurize(vocab, models.InputSpec(maxlen=3, truncating="post"), texts)
    assert text.decode(vocab, head.ids[0]) == ["a", "good", "good"]
    with pytest.raises(ValueError, match="truncating: expected 'pre' or 'post'"):
        models.featurize(vocab, models.InputSpec(truncating="middle"), texts)


def test_unique_inputs_are_sets_of_ids():
    vocab = text.build_vocabulary(
        ["a a b", "b c"], text.word_tokenizer(ngram_range=(1, 2))
    )
    f = models.featurize(vocab, models.InputSpec(maxlen=8, unique=True), ["a a a b"])
    valid = f.ids[0, : f.lengths[0]]
    assert len(set(valid.tolist())) == len(valid) == 4  # a, b, "a a", "a b"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The lab model after one short epoch on 300 sample reviews."""
    train = imdb.load_sample("train").take(np.r_[0:150, 1000:1150])
    fit, valid = imdb.validation_split(train, fraction=0.2, by="movie", seed=0)
    recipe = models.RECIPES["lab"]._replace(
        epochs=2, batch_size=32, inputs=models.InputSpec(maxlen=48)
    )
    log_dir = tmp_path_factory.mktemp("run")
    result = models.train(
        "lab",
        fit.texts,
        fit.labels,
        valid.texts,
        valid.labels,
        recipe=recipe,
        log_dir=log_dir,
        progress=False,
    )
    return result, log_dir, valid


def test_train_writes_metrics_and_curves(trained):
    result, log_dir, _ = trained
    assert len(result.history) == 2 and result.best_epoch == 2  # no early stop
    assert {"train_loss", "valid_accuracy", "seconds"} <= set(result.history[0])
    assert (log_dir / "curves.png").stat().st_size > 1000
    assert len((log_dir / "metrics.jsonl").read_text().splitlines()) == 2
    assert result.params == models.count_params(result.classifier.params)
    assert set(result.timings) == {"vocabulary", "vectorize", "compile"}
    assert 0 < result.timings["compile"] < result.history[0]["seconds"]


def test_predict_gives_probabilities_and_labels(trained, tmp_path):
    """Classifier.predict(texts) = sigmoid(predict_logits(featurize(texts)));
    load takes a run directory (the model/ inside it)."""
    result, _, valid = trained
    clf = result.classifier
    texts = valid.texts[:20]
    predicted = clf.predict(texts)
    features = models.featurize(clf.vocab, clf.inputs, texts)
    logits = models.predict_logits(clf.model, clf.params, features)
    np.testing.assert_allclose(
        predicted.probability, 1 / (1 + np.exp(-logits)), rtol=1e-5, atol=1e-7
    )
    assert predicted.probability.shape == predicted.label.shape == (20,)
    np.testing.assert_array_equal(predicted.label, logits > 0)
    for threshold in (0.0, float(np.median(predicted.probability)), 1.0):
        labels = clf.predict(texts, threshold=threshold).label
        np.testing.assert_array_equal(labels, predicted.probability > threshold)
    assert clf.predict(texts, threshold=0.0).label.all()
    models.save(tmp_path / "run" / "model", clf)
    again = models.load(tmp_path / "run")
    np.testing.assert_allclose(again.predict(texts).probability, predicted.probability)
    with pytest.raises(TypeError, match="texts: expected a sequence of strings"):
        clf.predict("one review")
    with pytest.raises(ValueError, match=r"threshold: expected a number in \[0, 1\]"):
        clf.predict(texts, threshold=1.5)
    with pytest.raises(FileNotFoundError, match="or a run directory"):
        models.load(tmp_path)


def test_save_load_round_trip(trained, tmp_path):
    result, _, valid = trained
    clf = result.classifier
    models.save(tmp_path / "model", clf, extra={"note": "test"})
    again = models.load(tmp_path / "model")
    assert again.model.config == clf.model.config and again.inputs == clf.inputs
    assert again.vocab.tokens == clf.vocab.tokens
    f = models.featurize(clf.vocab, clf.inputs, valid.texts)
    np.testing.assert_allclose(
        models.predict_logits(again.model, again.params, f),
        models.predict_logits(clf.model, clf.params, f),
        rtol=1e-6,
    )
    # predict_logits batches by length: same logits as one direct call
    direct = jax.jit(clf.model.apply)(clf.params, f.ids, f.lengths)
    np.testing.assert_allclose(
        models.predict_logits(clf.model, clf.params, f, batch_size=7),
        direct,
        rtol=1e-5,
        atol=1e-6,
    )
    metrics = models.evaluate(again, valid.texts, valid.labels)
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["count"] == len(valid)


def test_vocabulary_model_mismatch_is_refused(trained, tmp_path):
    clf = trained[0].classifier
    path = tmp_path / "model"
    models.save(path, clf)
    vocab_file = path / "vocab.json"
    payload = json.loads(vocab_file.read_text())
    smaller = text.build_vocabulary(["only a few words here"], clf.vocab.tokenizer)
    text.save_vocabulary(smaller, vocab_file)
    with pytest.raises(ValueError, match="vocabulary/model mismatch"):
        models.load(path)
    vocab_file.write_text(json.dumps(payload)[:-20])  # truncated JSON
    with pytest.raises(ValueError, match="vocab.json"):
        models.load(path)


def test_damaged_parameters_are_refused(trained, tmp_path):
    path = tmp_path / "model"
    models.save(path, trained[0].classifier)
    (path / "params.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="params.npz"):
        models.load(path)
    with pytest.raises(FileNotFoundError):
        models.load(tmp_path / "nothing")


def test_a_model_that_is_not_a_classifier_is_refused(tmp_path):
    from jaxseq import io

    io.save(tmp_path / "m", config={"layer": {}}, params={"w": np.zeros(2)})
    with pytest.raises(ValueError, match="expected a saved text classifier"):
        models.load(tmp_path / "m")


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match="train_labels: expected 0/1 labels"):
        models.train("lab", ["a", "b"], [0, 2], ["c"], [1])
    with pytest.raises(ValueError, match=r"valid_labels: expected shape \(1,\)"):
        models.train("lab", ["a", "b"], [0, 1], ["c"], [1, 0])


def _untrained(label_names=("ham", "spam")) -> models.Classifier:
    """A bag-of-words classifier with its initial parameters (no training)."""
    vocab = text.build_vocabulary(
        ["win cash now", "lunch at noon"], text.word_tokenizer()
    )
    model = models.build("bow", vocab_size=len(vocab))
    params = model.init(jax.random.key(0))
    return models.Classifier(
        model, params, vocab, models.InputSpec(maxlen=8), label_names
    )


def test_class_names_are_saved_with_the_model(tmp_path):
    """The names of label 0 and 1 go into jaxseq.json and come back; predict
    names each text's class; a model saved without them (before they were
    kept) loads with IMDb's ("neg", "pos")."""
    clf = _untrained()
    texts = ["win cash", "lunch now", "noon"]
    predicted = clf.predict(texts, threshold=0.0)  # every probability is > 0
    assert predicted.label_name == ["spam"] * 3
    assert clf.predict(texts, threshold=1.0).label_name == ["ham"] * 3
    models.save(tmp_path / "m", clf)
    config_file = tmp_path / "m" / "jaxseq.json"
    config = json.loads(config_file.read_text())
    assert config["config"]["label_names"] == ["ham", "spam"]
    again = models.load(tmp_path / "m")
    assert again.label_names == ("ham", "spam")
    assert again.predict(texts, threshold=0.0).label_name == ["spam"] * 3
    del config["config"]["label_names"]  # as saved before names were kept
    config_file.write_text(json.dumps(config))
    old = models.load(tmp_path / "m")
    assert old.label_names == ("neg", "pos")
    assert old.predict(texts, threshold=1.0).label_name == ["neg"] * 3
    config["config"]["label_names"] = ["same", "same"]
    config_file.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="jaxseq.json: label_names: expected two"):
        models.load(tmp_path / "m")
    with pytest.raises(ValueError, match="label_names: expected two distinct"):
        models.save(tmp_path / "bad", _untrained(("only one",)))
    with pytest.raises(ValueError, match="label_names: expected two distinct"):
        models.train("bow", ["a", "b"], [0, 1], ["c"], [1], label_names="ab")
