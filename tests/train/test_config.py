"""``fit``'s option groups (EarlyStopping, Checkpointing, Logging): checked when
made, naming the field; the deprecated flat keywords still work, warn, and give
the same run as the objects."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxseq.train import Checkpointing, EarlyStopping, Logging, fit
from jaxseq.train.config import KEYWORDS, from_keywords

KEY = jax.random.key(0)


def _walk_loss(params, batch, key):
    """Training batches (flag 0) push w up by 1 per SGD(1.0) step (one step per
    epoch here); validation
    batches (flag 1) score (w - 3)^2, so epoch 3 is the best."""
    w = params["w"]
    return jnp.mean(jnp.where(batch[0] > 0, (w - 3.0) ** 2, -w)), None


def _fit(**options):
    return fit(
        _walk_loss,
        optax.sgd(1.0),
        {"w": jnp.zeros(())},
        (np.zeros(4, np.float32),),
        key=KEY,
        batch_size=4,
        epochs=10,
        valid_data=(np.ones(2, np.float32),),
        **options,
    )


def test_old_keywords_warn_and_give_the_same_run(tmp_path):
    new = _fit(
        early_stopping=EarlyStopping(patience=2, min_delta=0.1, restore_best=False),
        checkpoint=Checkpointing(tmp_path / "new", every=3, max_to_keep=1),
        logging=Logging(tmp_path / "new_logs", title="walk", progress=False),
    )
    with pytest.warns(DeprecationWarning, match=r"fit\(\): the keywords .*patience"):
        old = _fit(
            patience=2,
            min_delta=0.1,
            restore_best=False,
            checkpoint_dir=tmp_path / "old",
            checkpoint_every=3,
            max_to_keep=1,
            log_dir=tmp_path / "old_logs",
            title="walk",
            progress=False,
        )
    # stops after epoch 5 (best epoch 3, then two worse), last parameters returned
    assert new.stopped_early and new.best_epoch == 3
    assert float(new.params["w"]) == float(new.state.params["w"]) == 5.0
    assert float(old.params["w"]) == float(new.params["w"])
    assert old.best_epoch == new.best_epoch and old.stopped_early
    strip = lambda h: [{k: v for k, v in r.items() if "seconds" not in k} for r in h]
    assert strip(old.history) == strip(new.history)
    for name in ("old", "new"):
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["5"]
        lines = (tmp_path / f"{name}_logs" / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3, 4, 5]
    # resuming the finished run: the same fingerprint through either form
    with pytest.warns(DeprecationWarning):
        again = _fit(checkpoint_dir=tmp_path / "new", patience=2, min_delta=0.1,
                     restore_best=False, progress=False)  # fmt: skip
    assert again.resumed_from == 5


def test_defaults_equal_no_options():
    plain = _fit(logging=Logging(progress=False))
    explicit = _fit(early_stopping=EarlyStopping(), logging=Logging(progress=False))
    assert plain.best_epoch == explicit.best_epoch == 3
    assert float(plain.params["w"]) == float(explicit.params["w"]) == 3.0


@pytest.mark.parametrize(
    "make,error,match",
    [
        (lambda: EarlyStopping(mode="up"), ValueError,
         r"^EarlyStopping\.mode: expected 'min' or 'max', got 'up'\.$"),
        (lambda: EarlyStopping(patience=0), ValueError,
         r"^EarlyStopping\.patience: expected a positive int \(epochs\) or None, "
         r"got 0\.$"),
        (lambda: EarlyStopping(patience=True), ValueError,
         r"^EarlyStopping\.patience: .* got True\.$"),
        (lambda: EarlyStopping(min_delta=-1.0), ValueError,
         r"^EarlyStopping\.min_delta: expected a finite number >= 0, got -1\.0\.$"),
        (lambda: EarlyStopping(min_delta=float("nan")), ValueError,
         r"^EarlyStopping\.min_delta: .* got nan\.$"),
        (lambda: EarlyStopping(monitor=""), ValueError,
         r"^EarlyStopping\.monitor: expected a metric name"),
        (lambda: EarlyStopping(restore_best="yes"), TypeError,
         r"^EarlyStopping\.restore_best: expected True or False, got 'yes'\.$"),
        (lambda: Checkpointing(None), TypeError,
         r"^Checkpointing\.directory: expected a path \(str or os\.PathLike\), got "
         r"None\.$"),
        (lambda: Checkpointing("d", every=0), ValueError,
         r"^Checkpointing\.every: expected a positive int \(steps\) or None, got 0\.$"),
        (lambda: Checkpointing("d", every=True), ValueError,
         r"^Checkpointing\.every: .* got True\.$"),
        (lambda: Checkpointing("d", max_to_keep=-1), ValueError,
         r"^Checkpointing\.max_to_keep: expected a positive int \(checkpoints\) or "
         r"None, got -1\.$"),
        (lambda: Checkpointing("d", resume=1), TypeError,
         r"^Checkpointing\.resume: expected True or False, got 1\.$"),
        (lambda: Logging(3), TypeError,
         r"^Logging\.directory: expected a path \(str or os\.PathLike\) or None, "
         r"got 3\.$"),
        (lambda: Logging(title=1), TypeError,
         r"^Logging\.title: expected a str or None, got 1\.$"),
        (lambda: Logging(progress="auto"), TypeError,
         r"^Logging\.progress: expected True, False or None, got 'auto'\.$"),
    ],
)  # fmt: skip
def test_bad_values_are_refused_naming_the_field(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_configs_are_frozen_and_compare_by_value():
    stop = EarlyStopping(patience=2)
    with pytest.raises(AttributeError):
        stop.patience = 3  # type: ignore[misc]
    assert stop == EarlyStopping(patience=2) != EarlyStopping(patience=3)
    assert hash(stop) == hash(EarlyStopping(patience=2))


def test_bad_keywords_and_mixed_forms_are_refused(tmp_path):
    with pytest.raises(TypeError, match=r"early_stopping: expected a "
                       r"jaxseq\.train\.EarlyStopping or None, got dict"):  # fmt: skip
        _fit(early_stopping={"patience": 2})
    with pytest.raises(
        TypeError, match=r"got unexpected keyword arguments \['epoch'\]"
    ):
        _fit(epoch=3)
    with pytest.raises(
        TypeError,
        match=r"got both checkpoint= and its deprecated keywords \['resume'\]",
    ):
        _fit(checkpoint=Checkpointing(tmp_path), resume=False)
    # a bad deprecated value names the field it maps to
    with pytest.raises(ValueError, match=r"^EarlyStopping\.patience: .* got 0\.$"):
        _fit(patience=0)


def test_from_keywords_maps_every_old_keyword():
    values = {
        "monitor": "accuracy", "mode": "max", "patience": 2, "min_delta": 0.5,
        "restore_best": False, "checkpoint_dir": "c", "checkpoint_every": 7,
        "max_to_keep": 3, "resume": False, "log_dir": "l", "title": "t",
        "progress": True,
    }  # fmt: skip
    assert set(values) == set(KEYWORDS)
    assert from_keywords(values) == {
        "early_stopping": EarlyStopping("accuracy", "max", 2, 0.5, False),
        "checkpoint": Checkpointing("c", every=7, max_to_keep=3, resume=False),
        "logging": Logging("l", title="t", progress=True),
    }
    # checkpoint keywords without a directory meant no checkpoints, as before
    assert from_keywords({"checkpoint_every": 5, "resume": False}) == {}
