"""An interrupted run's state: written whole, the best epoch kept across a resume, one run per
folder, and a damaged or edited state refused in one line that names the file."""

from __future__ import annotations

import csv
import json
import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from emotion.training.config import STATE_DIR, TINY_BLOCKS, TrainConfig, TrainError


def _config(out: Path, **kw) -> TrainConfig:
    return TrainConfig(data="nowhere", out=str(out), epochs=4, blocks=TINY_BLOCKS, verbose=0, **kw)


def _tiny_model():
    from emotion.model import build_model

    return build_model(TINY_BLOCKS)


def _fake_state(out: Path, config: TrainConfig, epoch: int = 2) -> Path:
    """The files an interrupted run leaves after `epoch` epochs, made by hand (no training)."""
    state = out / STATE_DIR
    (state / "backup").mkdir(parents=True)
    (state / "config.json").write_text(json.dumps(asdict(config)))
    (state / "backup" / "latest.weights.h5").write_bytes(b"weights")
    (state / "backup" / "training_metadata.json").write_text(json.dumps({"epoch": epoch, "batch": 0}))
    (state / "ledger.json").write_text(json.dumps({"commands": ["train"], "seconds": 3.0}))
    with (state / "history.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "loss", "val_accuracy"])
        for e in range(1, epoch + 1):
            writer.writerow([e, 1.0, 0.2])
    return state


@pytest.mark.parametrize("file, content, says", [
    ("config.json", '{"blocks": [[8, 1]', "config.json: .*not readable JSON"),
    ("config.json", "[]", "config.json: .*expected a JSON object, found list"),
    ("backup/training_metadata.json", '{"epoch": -5}', "training_metadata.json: .*finished epoch -5"),
    ("backup/training_metadata.json", '{"epoch": 99999}', "training_metadata.json: .*epoch 99999, expected 1 to 4"),
    ("backup/training_metadata.json", '{"epoch": "2"}', "training_metadata.json: .*finished epoch '2'"),
    ("backup/training_metadata.json", "", "training_metadata.json: .*not readable JSON"),
    ("ledger.json", '{"commands": 5}', "ledger.json: .*list of commands"),
    ("plan.json", '{"epochs": 0}', "plan.json: .*planned epochs 0"),
    ("history.csv", "epoch,loss\n1,x\n", "history.csv: .*not a readable history"),
    ("history.csv", "epoch,loss\n1,1\n2,1\n3,1\n", r"history.csv: .*do not follow 1\.\.2"),
])
def test_a_damaged_or_edited_state_is_refused_in_one_line_naming_the_file(
        tmp_path, file, content, says):
    from emotion.training.loop import train

    out = tmp_path / "out"
    config = _config(out)
    state = _fake_state(out, config)
    (state / file).write_text(content)
    before = {p: p.read_bytes() for p in state.rglob("*") if p.is_file()}
    with pytest.raises(TrainError, match=says) as error:
        train(_config(out, resume=True))
    message = str(error.value)
    assert "\n" not in message and "without --resume" in message
    assert {p: p.read_bytes() for p in state.rglob("*") if p.is_file()} == before  # kept as it was


def test_the_cli_says_the_damaged_file_in_one_line(tmp_path, capsys):
    from emotion.__main__ import main

    out = tmp_path / "out"
    state = _fake_state(out, _config(out))
    (state / "config.json").write_text("[]")
    code = main(["train", "--data", str(tmp_path / "none"), "--tiny", "--epochs", "4",
                 "--resume", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "config.json" in err and "Traceback" not in err


def test_a_second_run_into_the_same_folder_is_told_another_run_uses_it(tmp_path, capsys):
    from emotion.__main__ import main
    from emotion.training.state import run_lock

    out = tmp_path / "models"
    out.mkdir()
    (out / "emotion_cnn.keras").write_bytes(b"the user's model")
    with run_lock(out):  # the first run holds the folder
        code = main(["train", "--data", str(tmp_path / "none"), "--tiny", "--out", str(out)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and "another run is using this folder" in err and err.count("\n") == 0
    assert (out / "emotion_cnn.keras").read_bytes() == b"the user's model"
    # Once the first run is over, the folder is free again (and no lock file is left in it).
    with run_lock(out):
        pass
    assert sorted(p.name for p in out.iterdir()) == ["emotion_cnn.keras"]


def test_run_lock_lets_one_of_many_threads_in(tmp_path):
    """Eight runs start at once into one folder: exactly one gets it."""
    from emotion.training.state import run_lock

    out = tmp_path / "out"
    inside, refused, go, release = [], [], threading.Barrier(8), threading.Event()

    def run(k):
        go.wait()
        try:
            with run_lock(out):
                inside.append(k)
                release.wait(10)
        except TrainError:
            refused.append(k)
            if len(refused) == 7:
                release.set()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(inside) == 1 and len(refused) == 7
    # Made for the runs and left empty: removed again when the run that made it also got the
    # lock; when another thread won the lock, an empty folder may stay, never a file in it.
    assert not out.exists() or not any(out.iterdir())


def test_the_best_model_is_not_replaced_by_a_worse_resumed_epoch(tmp_path):
    from emotion.training.state import BestCheckpoint

    path = tmp_path / "best.keras"
    model = _tiny_model()
    resumed = BestCheckpoint(path, best=0.25)  # an earlier epoch, before the interruption
    resumed.set_model(model)
    resumed.on_epoch_end(3, {"val_accuracy": 0.18})
    assert not path.exists()
    resumed.on_epoch_end(4, {"val_accuracy": float("nan")})
    assert not path.exists()
    resumed.on_epoch_end(5, {"val_accuracy": 0.30})
    assert path.is_file() and resumed.best == pytest.approx(0.30)
    assert [p.name for p in tmp_path.iterdir()] == ["best.keras"]  # no temporary file left


def test_best_so_far_comes_from_the_resumed_history(tmp_path):
    from emotion.training.state import RunState

    out = tmp_path / "out"
    state_dir = _fake_state(out, _config(out), epoch=3)
    with (state_dir / "history.csv").open("w") as f:
        f.write("epoch,loss,val_accuracy\n1,1,0.2\n2,1,0.25\n3,1,0.18\n")
    state = RunState(out)
    assert state.best_so_far() is None  # no best model saved: nothing to protect
    (state_dir / "best.keras").write_bytes(b"saved")
    assert state.best_so_far() == pytest.approx(0.25)


def test_the_backup_is_written_whole_or_not_at_all(tmp_path):
    """Interrupted while Keras writes the weights: the previous epoch's backup is intact."""
    from emotion.training.state import AtomicBackup

    model = _tiny_model()
    backup = AtomicBackup(str(tmp_path / "backup"), delete_checkpoint=False)
    backup.set_model(model)
    backup.on_epoch_end(0)
    weights = tmp_path / "backup" / "latest.weights.h5"
    saved = weights.read_bytes()
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"] == 1

    real = model.save_weights

    def cut_short(path, overwrite=True):
        real(path, overwrite=overwrite)
        with open(path, "r+b") as f:
            f.truncate(800)
        raise KeyboardInterrupt

    model.save_weights = cut_short
    with pytest.raises(KeyboardInterrupt):
        backup.on_epoch_end(1)
    assert weights.read_bytes() == saved
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"] == 1
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == [
        "latest.weights.h5", "training_metadata.json"]


@pytest.mark.slow
def test_a_truncated_backup_is_one_line_naming_it(tmp_path):
    """A backup cut short by something else (a full disk, an editor): one line, not Keras's
    multi-line error, and no advice to --resume again."""
    import cv2

    from emotion.labels import EMOTIONS
    from emotion.training.loop import train

    rng = np.random.default_rng(0)
    data = tmp_path / "faces"
    for cls in EMOTIONS:
        (data / "train" / cls).mkdir(parents=True)
        for i in range(4):
            cv2.imwrite(str(data / "train" / cls / f"{i}.png"), rng.integers(0, 256, (48, 48), dtype=np.uint8))
    out = tmp_path / "out"

    def stop_in_epoch_two(progress):
        if progress.epoch == 2:
            raise KeyboardInterrupt

    config = TrainConfig(data=str(data), out=str(out), epochs=3, batch_size=8, blocks=TINY_BLOCKS,
                         verbose=0)
    with pytest.raises(KeyboardInterrupt):
        train(config, on_progress=stop_in_epoch_two)
    weights = out / STATE_DIR / "backup" / "latest.weights.h5"
    with open(weights, "r+b") as f:
        f.truncate(800)
    config.resume = True
    with pytest.raises(TrainError, match="latest.weights.h5: .*damaged") as error:
        train(config)
    assert "\n" not in str(error.value)
    assert weights.stat().st_size == 800  # the state is kept for the user to look at
