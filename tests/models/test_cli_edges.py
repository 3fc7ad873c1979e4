"""``jaxseq train text`` / ``predict`` on input just outside what they take:
training texts of one class, a language model's run directory."""

from __future__ import annotations

import json

import pytest

from jaxseq.models import cli, cli_train


def _csv(path, labels):
    rows = [f'"text number {i} here",{label}' for i, label in enumerate(labels)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("label", ["1", "0"])
def test_train_text_refuses_one_class(label, tmp_path, capsys):
    """Labels 0/1 name the classes even when one never occurs: a file of one
    of them only has nothing to tell apart, and says so (before any training)."""
    data = _csv(tmp_path / "one.csv", [label] * 12)
    argv = ["text", "--data", str(data), "--model", "bow", "--epochs", "1",
            "--quiet", "--out", str(tmp_path / "run")]  # fmt: skip
    assert cli_train.train_main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    other = "0" if label == "1" else "1"
    assert (
        f"--data {data}: expected training texts of every class ('0' (0) and "
        f"'1' (1)), got none of class '{other}' (" in err
    )
    assert f"of class '{label}'" in err
    assert not (tmp_path / "run" / "model").exists()


def test_predict_refuses_a_language_model_run(tmp_path, capsys):
    """A run directory of jaxseq train lm (its model/jaxseq.json says task lm)
    is named as such when parsing, not read as a classifier."""
    model = tmp_path / "run" / "model"
    model.mkdir(parents=True)
    (model / "jaxseq.json").write_text(json.dumps({"config": {"task": "lm"}}))
    for where in (tmp_path / "run", model):
        with pytest.raises(SystemExit) as exc:
            cli.predict_main([str(where), "a text"])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert "argument RUN_DIR: expected a classifier's run directory" in err
        assert "a language model's (jaxseq train lm)" in err
