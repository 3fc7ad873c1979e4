"""What fit shows while it runs: "compiling" as its own stage (timed apart as
``FitResult.compile_seconds``), a bar only where a person watches, plain lines
elsewhere, nothing with ``progress=False``; and curves a reader understands
(whole-number epochs, the kept epoch marked, a title)."""

from __future__ import annotations

import io

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxseq import cli
from jaxseq.train import Checkpointing, EarlyStopping, Logging, fit
from jaxseq.train.history import epoch_seconds, history_figure

KEY = jax.random.key(0)


def _walk_loss(params, batch, key):
    """Training batches (flag 0) push w up by 1 per SGD(1.0) step; validation
    batches (flag 1) score (w - 3)^2, so epoch 3 is the best."""
    w = params["w"]
    return jnp.mean(jnp.where(batch[0] > 0, (w - 3.0) ** 2, -w)), None


def _fit(progress=None, checkpoint_dir=None, **kwargs):
    args = dict(
        key=KEY,
        batch_size=2,
        epochs=5,
        valid_data=(np.ones(2, np.float32),),
        early_stopping=EarlyStopping(patience=5),
        logging=Logging(progress=progress),
        checkpoint=None if checkpoint_dir is None else Checkpointing(checkpoint_dir),
    )
    return fit(
        _walk_loss,
        optax.sgd(0.5),
        {"w": jnp.zeros(())},
        (np.zeros(4, np.float32),),
        **(args | kwargs),
    )


def test_lines_where_nobody_watches(capfd, monkeypatch):
    """stderr is no terminal (pytest's capture): no bar, plain lines; the
    compile stage comes first and its time is reported apart."""
    monkeypatch.delenv("CI", raising=False)
    result = _fit()
    err = capfd.readouterr().err
    lines = err.splitlines()
    assert lines[0].startswith("fit: compiling the training step ... done in ")
    assert [line.split(" (")[0] for line in lines[1:]] == [
        f"epoch {e}" for e in range(1, 6)
    ]
    assert "\r" not in err and "%|" not in err  # no bar
    assert result.compile_seconds is not None and result.compile_seconds > 0
    assert result.compile_seconds <= result.history[0]["seconds"]
    compiles = [r["compile_seconds"] for r in result.history]
    assert compiles == [result.compile_seconds, 0.0, 0.0, 0.0, 0.0]


def test_nothing_with_progress_false(capfd):
    result = _fit(progress=False)
    assert capfd.readouterr().err == ""
    assert result.compile_seconds > 0


def test_a_bar_with_a_compiling_stage_where_a_person_watches(monkeypatch):
    """With a terminal (faked) and CI unset: the bar says "compiling" (no rate,
    no ETA) until the first step is done, then counts the steps."""

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    monkeypatch.delenv("CI", raising=False)
    assert cli.watched()
    _fit()
    out = screen.getvalue()
    compiling = out.index("compiling: 0/10 steps")
    done = out.index("fit: compiling the training step ... done in ")
    assert compiling < done < out.index("fit:  10%") < out.index("fit: 100%")
    assert "epoch 5 (step 10)" in out
    assert "s/step" not in out[compiling:done] and "<" not in out[compiling:done]
    monkeypatch.setenv("CI", "true")  # a CI log: lines, not a bar
    screen.seek(0)
    screen.truncate()
    _fit()
    assert "%|" not in screen.getvalue()
    assert "fit: compiling the training step ... done in " in screen.getvalue()


def test_a_run_with_nothing_left_compiles_nothing(tmp_path, capfd):
    ckpt = tmp_path / "ckpt"
    _fit(checkpoint_dir=ckpt, progress=False)
    again = _fit(checkpoint_dir=ckpt)
    err = capfd.readouterr().err
    assert again.compile_seconds is None
    assert "fit: resuming from the verified checkpoint of step 10" in err
    assert "compiling" not in err


def test_epoch_seconds_leaves_out_the_compiling_epoch():
    history = [{"seconds": 30.0}, {"seconds": 2.0}, {"seconds": 4.0}, {"seconds": 3.0}]
    assert epoch_seconds(history) == 3.0
    assert epoch_seconds(history[:1]) is None
    history[2]["compile_seconds"] = 1.5  # a resumed call started in epoch 3
    assert epoch_seconds(history) == 2.5


@pytest.mark.parametrize("best", [3, None])
def test_curves_have_whole_epochs_the_kept_epoch_and_a_title(best):
    result = _fit(progress=False)
    assert result.best_epoch == 3
    fig = history_figure(
        result.history, title="walk: 4 examples", best_epoch=best, monitor="loss"
    )
    fig.canvas.draw()
    assert fig.get_suptitle() == "walk: 4 examples"
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if 1 <= t <= 5]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel()
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        kept = [label for label in labels if label.startswith("kept: epoch")]
        if best is None:
            assert not kept
        else:
            assert kept == ["kept: epoch 3, valid loss 0"]
            (line,) = [ln for ln in ax.get_lines() if ln.get_label() == kept[0]]
            assert list(line.get_xdata()) == [3, 3]  # a vertical line
