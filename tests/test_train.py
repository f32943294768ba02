"""A tiny end-to-end training: every artifact written, resume after an interruption, old model safe."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from dataclasses import replace

import cv2
import numpy as np
import pytest

from emotion.data import DataError
from emotion.labels import EMOTIONS
from emotion.training.config import STATE_DIR, TINY_BLOCKS, Stage, TrainConfig, TrainError
from emotion.training.loop import train

TINY = TINY_BLOCKS  # a small network keeps the test quick; the code path is the real one


def _config(data, out, **kw) -> TrainConfig:
    settings = dict(epochs=2, batch_size=16, blocks=TINY, verbose=0) | kw
    return TrainConfig(data=str(data), out=str(out), **settings)


ARTIFACTS = ["emotion_cnn.keras", "metrics.json", "history.csv", "training_curves.png",
             "confusion_matrix.png", "reliability.png"]


@pytest.mark.slow
def test_training_writes_every_artifact(tiny_folder, tmp_path):
    seen = []
    result = train(_config(tiny_folder, tmp_path / "out"), on_progress=seen.append)
    out = tmp_path / "out"
    for name in ARTIFACTS:
        assert (out / name).is_file(), name
    assert not (out / STATE_DIR).exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["n_images"] == 14
    assert len(metrics["test"]["confusion_matrix"]) == 7
    assert set(metrics["test"]["per_class"]) == set(EMOTIONS)
    # Flip TTA, what a photo gets: scored on the same faces.
    assert metrics["test_tta"]["n_images"] == 14 and 0 <= metrics["test_tta"]["accuracy"] <= 1
    assert set(metrics["test_tta"]["recall"]) == set(EMOTIONS)
    assert metrics["hyperparameters"]["optimizer"] == "adam"
    assert metrics["data"]["train"] + metrics["data"]["validation"] == 42
    assert metrics["versions"]["keras"].startswith("3")
    assert metrics["train_seconds"] > 0
    from emotion import registry
    saved = registry.saved_at(metrics)  # when, kept in the metrics: a clone keeps it
    assert saved is not None and abs((registry.model_info(out / "emotion_cnn.keras").modified
                                       - saved).total_seconds()) < 1
    # Every run ends calibrated: T fitted on validation, its effect measured on test too.
    calibration = metrics["calibration"]
    assert calibration["temperature"] > 0
    assert calibration["val"]["n"] == metrics["data"]["validation"]
    assert calibration["test"]["n"] == 14 and metrics["test"]["ece"] is not None
    assert calibration["val"]["nll_after"] <= calibration["val"]["nll_before"] + 1e-6
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(rows[0])
    assert result.evaluation.n_images == 14
    assert any(p.epoch_end for p in seen) and seen[-1].epoch == 2
    # Last, while the model is chosen on validation, the page is told what is going on.
    assert seen[-1].stage == Stage.CHOOSING and {p.stage for p in seen[:-1]} == {Stage.TRAINING}
    import keras

    model = keras.models.load_model(out / "emotion_cnn.keras", compile=False)
    assert model.output_shape == (None, 7)


class Interrupted(Exception):
    pass


@pytest.mark.slow
def test_resume_continues_after_an_interruption(tiny_folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    old_model = out / "emotion_cnn.keras"
    old_model.write_bytes(b"the user's previous model")

    def crash_in_epoch_two(progress):
        if progress.epoch == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(_config(tiny_folder, out, optimizer="sgd"), on_progress=crash_in_epoch_two)
    assert old_model.read_bytes() == b"the user's previous model"  # untouched by the failed run
    assert (out / STATE_DIR).is_dir()

    epochs_run = []
    train(_config(tiny_folder, out, optimizer="sgd", resume=True),
          on_progress=lambda p: epochs_run.append(p.epoch))
    assert set(epochs_run) == {2}  # epoch 1 came back from the checkpoint
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert old_model.read_bytes() != b"the user's previous model"
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["commands"]) == 2  # the interrupted run and the resumed one


@pytest.mark.slow
def test_training_can_start_from_a_saved_model(tiny_folder, tmp_path):
    import keras

    from emotion.model import build_model
    from emotion.training.selection import load_initial_weights

    first = train(_config(tiny_folder, tmp_path / "a", epochs=1))
    saved = keras.models.load_model(first.model_path, compile=False).get_weights()
    fresh = build_model(TINY)
    load_initial_weights(fresh, first.model_path)
    assert all(np.array_equal(a, b) for a, b in zip(fresh.get_weights(), saved))
    with pytest.raises(ValueError, match="do not match"):
        load_initial_weights(build_model(((4, 1),)), first.model_path)

    train(_config(tiny_folder, tmp_path / "b", epochs=1, init=str(first.model_path)))
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["hyperparameters"]["init"] == str(first.model_path)


@pytest.mark.slow
def test_resume_after_the_process_is_killed(tiny_folder, tmp_path):
    """SIGKILL mid-run, as a crash or a closed terminal would: --resume finishes the same run."""
    import signal
    import time

    out = tmp_path / "out"
    command = [sys.executable, "-m", "emotion", "train", "--data", str(tiny_folder), "--tiny",
               "--epochs", "4", "--batch-size", "8", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = out / STATE_DIR / "history.csv"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if history.is_file() and len(history.read_text().splitlines()) >= 2:  # header + epoch 1
            break
        time.sleep(0.02)
    assert process.poll() is None, "training ended before it could be interrupted"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "emotion_cnn.keras").exists()

    done = subprocess.run(command + ["--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 4 and not metrics["stopped_early"]
    assert [c.endswith("--resume") for c in metrics["commands"]] == [False, True]
    # A new process draws the same randomness for each epoch as an uninterrupted run does.
    whole = tmp_path / "whole"
    subprocess.run(command[:-1] + [str(whole)], capture_output=True, text=True, check=True)
    uninterrupted = list(csv.DictReader((whole / "history.csv").open()))
    for a, b in zip(uninterrupted, rows):
        assert float(b["loss"]) == pytest.approx(float(a["loss"]), abs=0.02), (a, b)


def test_cancel_leaves_the_old_model(tiny_folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "emotion_cnn.keras").write_bytes(b"old")
    result = train(_config(tiny_folder, out), should_stop=lambda: True)
    assert result.cancelled
    assert (out / "emotion_cnn.keras").read_bytes() == b"old"
    assert not (out / "metrics.json").exists()


def test_data_without_a_train_split_fails_cleanly(tiny_folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "emotion_cnn.keras").write_bytes(b"old")
    with pytest.raises(DataError, match="no training split"):
        train(_config(tiny_folder / "test", out))
    assert (out / "emotion_cnn.keras").read_bytes() == b"old"


@pytest.mark.slow
def test_train_command_line(tiny_folder, tmp_path):
    out = tmp_path / "cli"
    done = subprocess.run(
        [sys.executable, "-m", "emotion", "train", "--data", str(tiny_folder), "--epochs", "1",
         "--batch-size", "32", "--out", str(out), "--optimizer", "sgd", "--lr", "0.01",
         "--tiny", "--mixup", "0.2", "--balance", "0.5"],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["epochs_run"] == 1 and 0 <= summary["accuracy"] <= 1
    assert (out / "emotion_cnn.keras").is_file()
    hyper = json.loads((out / "metrics.json").read_text())["hyperparameters"]
    assert hyper["mixup"] == 0.2 and hyper["balance"] == 0.5
    assert "class weights: angry 1." in done.stdout + done.stderr
    bad = subprocess.run([sys.executable, "-m", "emotion", "train", "--data", str(tmp_path / "none")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "no such file or folder" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.slow
def test_minutes_plans_the_epochs_and_fits_the_schedule_to_them(tiny_folder, tmp_path):
    out = tmp_path / "timed"
    result = train(_config(tiny_folder, out, epochs=10_000, minutes=0.2, patience=10_000))
    metrics = json.loads((out / "metrics.json").read_text())
    rows = list(csv.DictReader((out / "history.csv").open()))
    # Stopped by the clock, not by the epoch limit, after as many epochs as it planned.
    assert 1 <= len(rows) < 10_000
    assert metrics["hyperparameters"]["epochs"] == len(rows) == len(result.history)
    assert metrics["hyperparameters"]["minutes"] == 0.2 and not metrics["stopped_early"]
    lrs = [float(r["lr"]) for r in rows]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] == pytest.approx(1e-3)
    if len(rows) >= 3:
        assert lrs[-1] < lrs[0]


def test_cosine_runs_from_the_start_rate_to_its_floor():
    from emotion.training.callbacks import cosine
    from emotion.training.config import COSINE_FLOOR

    assert cosine(1e-3, 0, 10) == pytest.approx(1e-3)
    assert cosine(1e-3, 5, 10) == pytest.approx(1e-3 * (1 + COSINE_FLOOR) / 2)
    assert cosine(1e-3, 10, 10) == pytest.approx(1e-3 * COSINE_FLOOR)


NO_TENSORFLOW = "raise ImportError('TensorFlow is deliberately missing in this test')\n"


@pytest.mark.slow
def test_training_runs_on_jax_without_tensorflow(tiny_folder, tmp_path):
    """The path a GPU machine without TensorFlow takes; its model then loads with TensorFlow."""
    pytest.importorskip("jax", reason="jax is not installed (pip install -r requirements.txt)")
    blocker = tmp_path / "blocker" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(NO_TENSORFLOW)
    out = tmp_path / "jax"
    env = {**__import__("os").environ, "KERAS_BACKEND": "jax",
           "PYTHONPATH": f"{blocker.parent}:{__import__('os').getcwd()}"}
    done = subprocess.run(
        [sys.executable, "-m", "emotion", "train", "--data", str(tiny_folder), "--epochs", "2",
         "--batch-size", "16", "--out", str(out), "--blocks", "8x1,16x1"],
        capture_output=True, text=True, env=env, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["versions"]["backend"] == "jax" and "tensorflow" not in metrics["versions"]
    from emotion.evaluate import evaluate_model
    from emotion.data import load
    from emotion.model import load_model

    model = load_model(out / "emotion_cnn.keras")  # this process runs TensorFlow
    assert model.name == "emotion_cnn"
    assert [type(layer).__name__ for layer in model.layers[:3]] == [
        "EvenLighting", "EvenSharpness", "Conv2D"]
    test = load(tiny_folder)["test"]
    assert evaluate_model(model, test.images, test.labels).accuracy == metrics["test"]["accuracy"]


@pytest.mark.parametrize("text, expected", [("32x1,64x2", ((32, 1), (64, 2))), ("16X3", ((16, 3),))])
def test_blocks_option_reads_widths_and_convolutions(text, expected):
    from emotion.cli import _blocks

    assert _blocks(text) == expected


@pytest.mark.parametrize("text", ["", "32", "32x", "0x2", "32x1,,64x2", "ax2"])
def test_blocks_option_rejects_what_it_cannot_read(text):
    import argparse

    from emotion.cli import _blocks

    with pytest.raises(argparse.ArgumentTypeError, match="WIDTHxCONVS"):
        _blocks(text)


def test_recomputed_batch_norm_statistics_are_those_of_the_faces_at_inference():
    import keras

    from emotion.model import build_model
    from emotion.preprocess import normalise
    from emotion.training.selection import recompute_batch_norm

    model = build_model(TINY)
    faces = np.random.default_rng(1).integers(0, 256, (96, 48, 48), dtype=np.uint8)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    momenta, rates = [n.momentum for n in norms], [d.rate for d in drops]

    recompute_batch_norm(model, faces, batch_size=32)  # three equal batches: their mean is exact
    lighting, sharpening, conv = model.layers[:3]
    assert isinstance(conv, keras.layers.Conv2D) and model.layers[3] is norms[0]
    features = keras.ops.convert_to_numpy(conv(sharpening(lighting(normalise(faces)))))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(norms[0].moving_mean),
                               features.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
    # The second layer's statistics also exist: every layer was updated, not just the first.
    assert not np.allclose(keras.ops.convert_to_numpy(norms[1].moving_mean), 0)
    assert [n.momentum for n in norms] == momenta and [d.rate for d in drops] == rates
    # Dropout was off while the statistics were taken, so the same faces give the same numbers.
    again = build_model(TINY)
    again.set_weights(model.get_weights())
    recompute_batch_norm(again, faces, batch_size=32)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_training_keeps_the_candidate_that_scores_best_on_validation(tiny_folder, tmp_path):
    out = tmp_path / "out"
    result = train(_config(tiny_folder, out, epochs=4, average=0.75))
    metrics = json.loads((out / "metrics.json").read_text())
    scores = metrics["model_choice"]["val_accuracy"]
    assert set(scores) == {"best epoch", "best epoch, batch norm recomputed",
                           "average of epochs 2-4"}
    assert scores[metrics["model_choice"]["kept"]] == max(scores.values())
    # The learning rate holds from the first averaged epoch, where the cosine had got to.
    from emotion.training.callbacks import cosine

    lrs = [float(r["lr"]) for r in csv.DictReader((out / "history.csv").open())]
    assert lrs[0] == pytest.approx(1e-3)
    assert lrs[1:] == pytest.approx([cosine(1e-3, 1, 4)] * 3)
    assert "held from epoch 2" in metrics["hyperparameters"]["schedule"]
    assert metrics["hyperparameters"]["average"] == 0.75
    # The shipped file is the kept candidate: it scores the same on validation.
    from emotion.data import load, training_splits
    from emotion.evaluate import evaluate_model
    from emotion.model import load_model

    _, val, _ = training_splits(load(tiny_folder))
    kept = load_model(result.model_path)
    assert evaluate_model(kept, val.images, val.labels).accuracy == max(scores.values())


@pytest.mark.slow
def test_the_average_survives_an_interruption(tiny_folder, tmp_path):
    out = tmp_path / "out"

    def crash_in_epoch_four(progress):
        if progress.epoch == 4:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(_config(tiny_folder, out, epochs=4, average=0.75), on_progress=crash_in_epoch_four)
    with np.load(out / STATE_DIR / "average.npz") as saved:
        assert saved["epochs"].tolist() == [2, 3]
    train(_config(tiny_folder, out, epochs=4, average=0.75, resume=True))
    metrics = json.loads((out / "metrics.json").read_text())
    assert "average of epochs 2-4" in metrics["model_choice"]["val_accuracy"]


@pytest.mark.slow
def test_a_timed_run_reports_the_epochs_it_really_averaged(tiny_folder, tmp_path):
    import re

    out = tmp_path / "timed"
    train(_config(tiny_folder, out, epochs=10_000, minutes=0.15, patience=10_000, average=0.5))
    metrics = json.loads((out / "metrics.json").read_text())
    lrs = [float(r["lr"]) for r in csv.DictReader((out / "history.csv").open())]
    averaged = [name for name in metrics["model_choice"]["val_accuracy"] if name.startswith("av")]
    first, last = map(int, re.fullmatch(r"average of epochs (\d+)-(\d+)", averaged[0]).groups())
    assert last == len(lrs)
    assert f"held from epoch {first} while" in metrics["hyperparameters"]["schedule"]
    assert len(set(lrs[first - 1:])) == 1  # the rate held over exactly the averaged epochs
    if first > 1:
        assert lrs[first - 2] != lrs[first - 1]


@pytest.mark.parametrize("fraction", ["1.5", "-0.1"])
def test_average_option_must_be_a_fraction(tiny_folder, tmp_path, fraction):
    done = subprocess.run(
        [sys.executable, "-m", "emotion", "train", "--data", str(tiny_folder), "--tiny",
         "--average", fraction, "--out", str(tmp_path / "out")],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 2 and "--average" in done.stderr and "from 0" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("option, value, says", [
    ("--epochs", "0", "--epochs 0"), ("--epochs", "-1", "--epochs -1"),
    ("--lr", "nan", "--lr nan"), ("--lr", "inf", "--lr inf"), ("--lr", "-1", "--lr -1"),
    ("--batch-size", "0", "--batch-size 0"), ("--batch-size", "-5", "--batch-size -5"),
    ("--minutes", "-5", "--minutes -5"), ("--minutes", "0", "--minutes 0"),
    ("--patience", "-1", "--patience -1"), ("--average", "nan", "--average nan"),
    ("--lr", "1e39", "--lr 1e+39"), ("--lr", "11", "up to 10"),
    ("--blocks", "8x1,8x1,8x1,8x1,8x1,8x1", "at most 5"), ("--tiny", "--blocks=8x1", "give one of them"),
])
def test_train_refuses_options_that_cannot_train_before_touching_anything(
        tmp_path, capsys, option, value, says):
    """Exit 2 with one line naming the option; the model already in --out is left as it was."""
    from emotion.__main__ import main

    out = tmp_path / "models"
    out.mkdir()
    model = out / "emotion_cnn.keras"
    model.write_bytes(b"the user's good model")
    state = out / ".train-state"
    state.mkdir()
    (state / "config.json").write_text("{}")
    before = sorted(p.name for p in out.rglob("*"))
    # --data points nowhere: the options are checked before the data is even looked for.
    code = main(["train", "--data", str(tmp_path / "typo"), "--out", str(out), option, value])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and says in err
    assert model.read_bytes() == b"the user's good model"
    assert sorted(p.name for p in out.rglob("*")) == before


def test_train_refuses_an_out_that_is_a_file(tmp_path, capsys):
    from emotion.__main__ import main

    target = tmp_path / "not-a-folder.keras"
    target.write_bytes(b"something the user had")
    code = main(["train", "--data", str(tmp_path), "--out", str(target)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "is a file" in err and err.count("\n") == 0
    assert target.read_bytes() == b"something the user had"


@pytest.mark.parametrize("settings, says", [
    ({"epochs": 0}, "--epochs 0: give at least 1 epoch (the default is 60)"),
    ({"batch_size": -5}, "--batch-size -5"), ({"lr": float("nan")}, "--lr nan"),
    ({"lr": 11.0}, "up to 10"), ({"patience": -1}, "--patience -1"),
    ({"minutes": 0.0}, "--minutes 0"), ({"average": 1.5}, "from 0 (off) to 1"),
    ({"mixup": -0.2}, "--mixup -0.2"), ({"mixup": float("inf")}, "--mixup inf"),
    ({"balance": -0.5}, "--balance -0.5: give 0 (off) up to 1"),
    ({"balance": float("nan")}, "--balance nan"), ({"balance": 2.0}, "--balance 2"),
    ({"distill": 1.5}, "--distill 1.5: give the share"),
    ({"distill": float("nan")}, "--distill nan"),
    ({"teachers": ("no/such.keras",)}, "--teacher no/such.keras: no such model file"),
    ({"blocks": ((8, 1),) * 6}, "at most 5"), ({"blocks": ((5000, 1),)}, "at most 4096 filters"),
])
def test_train_config_checks_its_settings_for_every_caller(tmp_path, settings, says):
    """The command line's checks live in TrainConfig: the Training page and jobs get them too."""
    with pytest.raises(TrainError, match=re.escape(says)):
        TrainConfig(data="x", out=str(tmp_path), **settings)
    config = TrainConfig(data="x", out=str(tmp_path))
    with pytest.raises(TrainError, match="--out .* is a file"):
        replace(config, out=str(_a_file(tmp_path)))


def _a_file(folder):
    path = folder / "emotion_cnn.keras"
    path.write_bytes(b"a model")
    return path


def _crash_in_epoch(n: int):
    def on_progress(progress):
        if progress.epoch == n:
            raise Interrupted
    return on_progress


@pytest.mark.slow
def test_a_resumed_run_follows_the_uninterrupted_one(tiny_folder, tmp_path):
    """Stopped after epoch 3 and resumed, epochs 4-6 match the uninterrupted run's.

    A restarted process used to replay epoch 1's batch order, augmentations and dropout masks,
    and the network, which had fitted that sequence already, scored far above the uninterrupted
    run on it (training accuracy 0.92 against 0.11 here) until the replay ran out.
    """
    whole = train(_config(tiny_folder, tmp_path / "whole", epochs=6)).history
    out = tmp_path / "cut"
    with pytest.raises(Interrupted):
        train(_config(tiny_folder, out, epochs=6), on_progress=_crash_in_epoch(4))
    resumed = train(_config(tiny_folder, out, epochs=6, resume=True)).history
    assert [r["epoch"] for r in resumed] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(whole, resumed):
        assert b["loss"] == pytest.approx(a["loss"], abs=0.02), (a, b)
        assert b["accuracy"] == pytest.approx(a["accuracy"], abs=0.03), (a, b)


@pytest.mark.slow
def test_resume_refuses_another_network_and_keeps_the_saved_run(tiny_folder, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(Interrupted):
        train(_config(tiny_folder, out, epochs=3), on_progress=_crash_in_epoch(2))
    saved = (out / STATE_DIR / "config.json").read_text()
    with pytest.raises(TrainError, match="used --blocks 8x1,16x1, not --blocks 4x1") as error:
        train(_config(tiny_folder, out, epochs=3, blocks=((4, 1),), resume=True))
    assert "\n" not in str(error.value)
    with pytest.raises(TrainError, match="used --optimizer adam, not --optimizer sgd"):
        train(_config(tiny_folder, out, epochs=3, optimizer="sgd", resume=True))
    with pytest.raises(TrainError, match="used --mixup 0.0, not --mixup 0.2"):
        train(_config(tiny_folder, out, epochs=3, mixup=0.2, resume=True))
    with pytest.raises(TrainError, match="used --balance 0.0, not --balance 0.5"):
        train(_config(tiny_folder, out, epochs=3, balance=0.5, resume=True))
    teacher = str(out / STATE_DIR / "best.keras")
    with pytest.raises(TrainError, match=f"used no --teacher, not --teacher {re.escape(teacher)}"):
        train(_config(tiny_folder, out, epochs=3, teachers=(teacher,), resume=True))
    assert (out / STATE_DIR / "config.json").read_text() == saved
    result = train(_config(tiny_folder, out, epochs=3, resume=True))  # still resumable
    assert [r["epoch"] for r in result.history] == [1, 2, 3]


def test_resume_with_nothing_saved_says_so(tiny_folder, tmp_path, capsys):
    from emotion.__main__ import main

    out = tmp_path / "out"
    code = main(["train", "--data", str(tiny_folder), "--tiny", "--resume", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "holds no interrupted run" in err and "without --resume" in err
    assert err.count("\n") == 0 and not out.exists()


@pytest.mark.slow
def test_a_typo_in_the_data_keeps_an_interrupted_run(tiny_folder, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(Interrupted):
        train(_config(tiny_folder, out, epochs=3), on_progress=_crash_in_epoch(2))
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(DataError, match="tyop"):
        train(_config(tmp_path / "tyop", out, epochs=3))  # a fresh run: it would discard the state
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    result = train(_config(tiny_folder, out, epochs=3, resume=True))
    assert [r["epoch"] for r in result.history] == [1, 2, 3]


@pytest.mark.slow
def test_a_run_that_fails_before_its_first_epoch_leaves_nothing(tiny_folder, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(Interrupted):
        train(_config(tiny_folder, out), on_progress=_crash_in_epoch(1))
    assert not (out / STATE_DIR).exists()


@pytest.mark.slow
def test_a_diverged_run_writes_nothing(tiny_folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "emotion_cnn.keras").write_bytes(b"the user's good model")
    config = _config(tiny_folder, out)
    # TrainConfig refuses a NaN learning rate; set past its check, it makes the loss NaN on the
    # first batch, as a run that diverges does.
    config.lr = float("nan")
    with pytest.raises(TrainError, match="diverged.*lower --lr"):
        train(config)
    assert sorted(p.name for p in out.iterdir()) == ["emotion_cnn.keras"]
    assert (out / "emotion_cnn.keras").read_bytes() == b"the user's good model"


@pytest.fixture
def learnable_folder(tmp_path):
    """Faces whose emotion is the spacing of their stripes: a tiny network learns it in a few
    epochs (not their brightness, which the network's EvenLighting takes away)."""
    rng = np.random.default_rng(1)
    root = tmp_path / "learnable"
    rows = np.arange(48)[:, None]
    for k, cls in enumerate(EMOTIONS):
        (root / "train" / cls).mkdir(parents=True)
        stripes = np.where((rows // (1, 2, 3, 4, 6, 8, 12)[k]) % 2 == 0, 200, 50) * np.ones((1, 48))
        for i in range(20):
            face = np.clip(stripes + rng.normal(0, 4, (48, 48)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / "train" / cls / f"{i}.png"), face)
    return root


@pytest.mark.slow
def test_a_worse_model_does_not_replace_a_better_one(learnable_folder, tmp_path, capsys):
    from emotion.__main__ import main

    out = tmp_path / "models"
    # The basic augmentation: the made-up faces' patterns are what the robust one's noise, blur
    # and contrast are there to hide, and this test is about keeping a good model, not making one.
    good = train(_config(learnable_folder, out, epochs=12, batch_size=8, lr=3e-3, robust=False))
    assert not good.kept_previous
    good_bytes = (out / "emotion_cnn.keras").read_bytes()
    scores = json.loads((out / "metrics.json").read_text())["model_choice"]["val_accuracy"]
    assert max(scores.values()) >= 0.6, scores  # well above chance (1/7): worth keeping

    worse = ["train", "--data", str(learnable_folder), "--tiny", "--epochs", "1",
             "--lr", "1e-9", "--basic-augment", "--out", str(out)]
    assert main(worse) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["replaced"] is False
    assert "kept the model already in" in captured.err and "--force" in captured.err
    assert (out / "emotion_cnn.keras").read_bytes() == good_bytes
    assert (out / "candidate" / "emotion_cnn.keras").is_file()
    assert not (out / STATE_DIR).exists()

    assert main(worse + ["--force"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["replaced"] is True
    assert (out / "emotion_cnn.keras").read_bytes() != good_bytes


def test_training_on_two_rows_or_one_emotion_is_refused(hostile, tmp_path, capsys):
    from emotion.__main__ import main

    out = tmp_path / "models"
    for source, says in [(hostile["one_row.csv"], "training needs at least"),
                         (hostile["single_class.csv"], "at least two emotions")]:
        code = main(["train", "--data", str(source), "--tiny", "--out", str(out)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and says in err and err.count("\n") == 0, err
    assert not out.exists()


@pytest.mark.slow
def test_bf16_training_writes_a_float32_model(tiny_folder, tmp_path):
    """Mixed bfloat16 trains; what is chosen, calibrated and written is plain float32."""
    from emotion.model import load_model

    out = tmp_path / "bf16"
    train(_config(tiny_folder, out, precision="bf16"))
    model = load_model(out / "emotion_cnn.keras")
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["hyperparameters"]["precision"] == "bf16"
    assert metrics["calibration"]["temperature"] > 0
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"  # left as it was


def test_minutes_plans_at_the_median_batchs_pace_not_a_spell_of_other_work(tmp_path, monkeypatch):
    """Epoch 2, which --minutes plans from, had 3 of its 10 batches slowed to 10 s by other work
    on the machine: the plan is that of 1 s batches (10 s epochs), not of a 37 s epoch."""
    from types import SimpleNamespace

    from emotion.training import callbacks
    from emotion.training.config import EpochPlan

    clock = [0.0]
    monkeypatch.setattr(callbacks, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    plan = EpochPlan(10_000, tmp_path / "plan.json")
    budget = callbacks.TimeBudget(minutes=2, max_epochs=10_000, plan=plan, spent_s=0)
    budget.set_model(SimpleNamespace(stop_training=False))
    budget.on_train_begin()
    for epoch, batch_s in enumerate(([20.0] + [1.0] * 9, [10.0] * 3 + [1.0] * 7)):
        budget.on_epoch_begin(epoch)
        for batch, seconds in enumerate(batch_s):
            budget.on_train_batch_begin(batch)
            clock[0] += seconds
            budget.on_train_batch_end(batch)
        budget.on_epoch_end(epoch)
    # 120 s, 29 + 37 spent: 54 s left, at 10 s an epoch 5 more.
    assert plan.epochs == 2 + 5 and json.loads(plan.path.read_text())["epochs"] == 7
    assert callbacks.typical_epoch_s(12.0, [1.0, 1.0, 9.0]) == 3.0 + 1.0
    assert callbacks.typical_epoch_s(12.0, []) == 12.0


@pytest.mark.parametrize("flags, expected", [
    ("fpu sse2 avx2 fma", False), ("avx2 avx512f avx512_bf16", True), ("avx2 amx_bf16 amx_tile", True),
])
def test_bf16_instructions_are_read_from_the_processors_flags(tmp_path, flags, expected):
    from emotion.training.loop import has_bf16_instructions

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: x\nflags\t\t: {flags}\n\n"
                       f"processor\t: 1\nflags\t\t: {flags}\n")
    assert has_bf16_instructions(cpuinfo) is expected
    cpuinfo.write_text("processor\t: 0\n")  # no flags line: cannot tell
    assert has_bf16_instructions(cpuinfo) is None
    assert has_bf16_instructions(tmp_path / "missing") is None


def test_bf16_on_a_processor_without_bf16_instructions_warns(monkeypatch, capsys):
    """Emulated there, bf16 trained 10x slower than float32 (scripts/bf16_throughput.py): the
    run says so at its start, and goes on."""
    from emotion.training import loop

    monkeypatch.setattr(loop, "has_bf16_instructions", lambda: False)
    monkeypatch.setattr(loop, "trains_on_cpu", lambda: True)
    with loop.precision_policy("bf16", verbose=1):
        pass
    with loop.precision_policy("float32", verbose=1):
        pass
    err = capsys.readouterr().err
    assert err.count("no bfloat16 instructions") == 1 and "--precision float32" in err
    monkeypatch.setattr(loop, "has_bf16_instructions", lambda: True)
    with loop.precision_policy("bf16", verbose=1):
        pass
    assert capsys.readouterr().err == ""


def test_unknown_precision_is_refused_before_anything_is_written(tiny_folder, tmp_path):
    with pytest.raises(TrainError, match="precision"):
        train(_config(tiny_folder, tmp_path / "x", precision="fp8"))
    assert not (tmp_path / "x" / STATE_DIR).exists()


def test_mixup_blends_faces_and_labels_alike_and_only_in_training():
    from emotion.data import Split
    from emotion.training.datasets import Batches

    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 256, (40, 48, 48), dtype=np.uint8), np.arange(40) % 7)
    plain = Batches(split, 20, training=True, seed=3)
    mixed = Batches(split, 20, training=True, seed=3, mixup=0.4)
    (x0, y0), (x1, y1) = plain[1], mixed[1]
    np.testing.assert_array_equal(mixed[1][0], x1)  # the same batch mixes the same pairs again
    np.testing.assert_allclose(y1.sum(axis=1), 1, atol=1e-6)
    assert (y1[np.arange(20), y0.argmax(axis=1)] >= 0.5 - 1e-6).all()  # each keeps the most
    assert (np.abs(x1 - x0).max(axis=(1, 2, 3)) > 1e-3).sum() >= 10  # most really are blended
    # Each face is itself and one partner from the batch, and so is its label, in one share.
    for i in range(20):
        fits = []
        for j in set(range(20)) - {i}:
            d = x0[i] - x0[j]
            s = float(np.sum((x1[i] - x0[j]) * d) / np.sum(d * d))
            fits.append((float(np.abs(x1[i] - (s * x0[i] + (1 - s) * x0[j])).max()), s, j))
        residual, s, j = min(fits)
        assert residual < 1e-4 and 0.5 - 1e-4 <= s <= 1 + 1e-4
        np.testing.assert_allclose(y1[i], s * y0[i] + (1 - s) * y0[j], atol=1e-3)
    validation = Batches(split, 20, training=False, seed=3, mixup=0.4)
    np.testing.assert_array_equal(validation[0][1], plain.y[:20])


def test_class_balanced_weights_favour_rare_emotions_and_average_one():
    from emotion.data import Split
    from emotion.training.datasets import Batches, balanced_weights

    counts = np.array([400, 40, 400, 800, 500, 300, 500])
    labels = np.repeat(np.arange(7), counts)
    np.testing.assert_allclose(balanced_weights(labels, 0.0), 1, atol=1e-6)
    for power in (0.5, 1.0):
        weights = balanced_weights(labels, power)
        assert weights[labels].mean() == pytest.approx(1, abs=1e-5)  # the rate keeps its meaning
        assert weights[1] > weights[5] > weights[0] > weights[4] > weights[3]  # rarer weighs more
    full = balanced_weights(labels, 1.0)
    np.testing.assert_allclose(full * counts, (full * counts)[0], rtol=1e-5)  # each emotion alike
    np.testing.assert_allclose(balanced_weights(labels, 0.5) ** 2 / full,
                               (balanced_weights(labels, 0.5) ** 2 / full)[0], rtol=1e-5)

    rng = np.random.default_rng(2)
    split = Split(rng.integers(0, 256, (28, 48, 48), dtype=np.uint8), np.arange(28) % 7)
    for mixup in (0.0, 0.4):
        x, y, w = Batches(split, 14, training=True, seed=3, mixup=mixup, class_weights=full)[1]
        np.testing.assert_allclose(w, y @ full, rtol=1e-6)  # a mixed face: its labels' shares
        assert w.shape == (14,) and w.dtype == np.float32
    assert len(Batches(split, 14, training=True, seed=3)[0]) == 2  # no weights when off


def test_distilled_targets_share_each_label_with_the_teachers():
    from emotion.data import Split
    from emotion.training.datasets import Batches
    from emotion.training.distill import distilled_targets

    rng = np.random.default_rng(1)
    labels = np.arange(30) % 7
    teachers = rng.dirichlet(np.ones(7), size=30).astype(np.float32)
    targets = distilled_targets(labels, teachers, 0.25)
    np.testing.assert_allclose(targets.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(targets[np.arange(30), labels],
                               0.75 + 0.25 * teachers[np.arange(30), labels], atol=1e-6)
    other = np.ones((30, 7), bool)
    other[np.arange(30), labels] = False
    np.testing.assert_allclose(targets[other], 0.25 * teachers[other], atol=1e-6)
    np.testing.assert_array_equal(distilled_targets(labels, teachers, 0.0).argmax(axis=1), labels)

    split = Split(rng.integers(0, 256, (30, 48, 48), dtype=np.uint8), labels)
    batches = Batches(split, 10, training=True, seed=3, targets=targets)
    order = batches.order()[10:20]
    np.testing.assert_array_equal(batches[1][1], targets[order])  # each face keeps its own target


@pytest.mark.slow
def test_training_distils_from_teachers_and_records_them(tiny_folder, tmp_path, capsys):
    first = train(_config(tiny_folder, tmp_path / "teacher", epochs=1))
    out = tmp_path / "student"
    done = subprocess.run(
        [sys.executable, "-m", "emotion", "train", "--data", str(tiny_folder), "--epochs", "1",
         "--tiny", "--out", str(out), "--teacher", str(first.model_path),
         "--teacher", str(first.model_path), "--distill", "0.7"],
        capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "teachers: 2, right on" in done.stdout + done.stderr
    hyper = json.loads((out / "metrics.json").read_text())["hyperparameters"]
    assert hyper["teachers"] == [str(first.model_path)] * 2 and hyper["distill"] == 0.7
    # A teacher that is not a model is refused in one line, before anything is written.
    (tmp_path / "junk").mkdir()
    junk = _a_file(tmp_path / "junk")
    bad = subprocess.run(
        [sys.executable, "-m", "emotion", "train", "--data", str(tiny_folder), "--tiny",
         "--out", str(tmp_path / "never"), "--teacher", str(junk)],
        capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "is not a readable Keras model" in bad.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "never").exists()
