"""Training: augmentation on the fly, Adam or SGD, cosine learning rate, early stopping, resume.

`train(config)` does it all and writes the artifacts of `write_artifacts` atomically into
`config.out`; `on_progress` and `should_stop` let a caller (the training page) follow and cancel.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import data as data_module
from .config import MODELS_DIR, SEED
from .evaluate import Evaluation, evaluate_model
from .labels import EMOTIONS, NUM_CLASSES
from .model import DEFAULT_BLOCKS, NAME, build_model, save_model_atomic
from .preprocess import normalise

MODEL_FILE = "emotion_cnn.keras"
STATE_DIR = ".train-state"  # per-epoch backup that --resume continues from
TINY_BLOCKS = ((8, 1), (16, 1))  # for trying the pipeline out in seconds


@dataclass
class TrainConfig:
    data: str
    optimizer: str = "adam"
    epochs: int = 60
    batch_size: int = 64
    lr: float | None = None  # None: 1e-3 for Adam, 1e-2 for SGD
    augment: bool = True
    label_smoothing: float = 0.1
    patience: int = 15
    blocks: tuple[tuple[int, int], ...] = DEFAULT_BLOCKS
    out: str = str(MODELS_DIR)
    resume: bool = False
    init: str | None = None  # start from this model's weights (another cosine cycle, fine-tuning)
    minutes: float | None = None  # stop after as many epochs as fit in this time, schedule fitted to them
    average: float = 0.0  # average the weights of this last fraction of the epochs (SWA); 0: off
    seed: int = SEED
    force: bool = False  # replace the model in `out` even when it scores better on validation
    verbose: int = 1

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 1e-3 if self.optimizer == "adam" else 1e-2


@dataclass
class Progress:
    """Where a training run is: sent to `on_progress` after every batch and epoch."""

    epoch: int  # 1-based
    epochs: int
    step: int
    steps: int
    logs: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    epoch_end: bool = False
    elapsed_s: float = 0.0
    stage: str = "training"  # after the last epoch: what the run is doing before it writes


@dataclass
class TrainResult:
    out_dir: Path
    model_path: Path
    evaluation: Evaluation | None
    history: list[dict[str, float]]
    stopped_early: bool
    cancelled: bool
    train_seconds: float
    kept_previous: bool = False  # the model already in `out` scored better: the new one is beside it


class TrainError(ValueError):
    """A run that cannot start, or whose model must not be written: one line for the user."""


CANDIDATE_DIR = "candidate"  # where a new model that scored below the one in `out` is written
# What the saved weights' shapes depend on: a resumed run must use the same.
RESUME_MUST_MATCH = ("blocks", "optimizer", "augment")

CHOOSING = "recomputing batch-norm statistics and choosing the model on validation"
COSINE_FLOOR = 0.01  # the learning rate decays to 1% of its start


def make_optimizer(name: str, lr: float, total_steps: int | None):
    """Adam or Nesterov SGD with cosine decay over `total_steps`; None: a plain rate a callback sets."""
    import keras

    schedule = lr if total_steps is None else keras.optimizers.schedules.CosineDecay(
        lr, decay_steps=max(1, total_steps), alpha=COSINE_FLOOR)
    if name == "adam":
        return keras.optimizers.Adam(schedule)
    if name == "sgd":
        return keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)
    raise ValueError(f"unknown optimizer {name!r}: expected adam or sgd")


def augmenter():
    """Flip, small shift, rotation and zoom, drawn afresh for every batch."""
    import keras
    from keras import layers

    return keras.Sequential([
        layers.RandomFlip("horizontal"),
        layers.RandomTranslation(0.1, 0.1, fill_mode="nearest"),
        layers.RandomRotation(0.04, fill_mode="nearest"),  # about +-14 degrees
        layers.RandomZoom(0.1, fill_mode="nearest"),
    ], name="augment")


def make_dataset(split, batch_size: int, training: bool, seed: int):
    """Batches of (normalised faces, one-hot labels); shuffled, when training, by `EpochRandomness`."""
    return _batches_class()(split, batch_size, training, seed)


def trainable(model, augment: bool):
    """The model that `fit` trains: augmentation layers then `model`, or `model` itself.

    In front of the network, the augmentation's random state is the model's, which
    `EpochRandomness` keys to the epoch; it also runs inside the compiled step (on a GPU there).
    """
    import keras

    if not augment:
        return model
    return keras.Sequential([keras.Input(model.input_shape[1:]), augmenter(), model], name="augmented")


def _batches_class():
    import keras

    class Batches(keras.utils.PyDataset):
        """A split's faces in batches; when training, in an order drawn from (seed, epoch)."""

        def __init__(self, split, batch_size, training, seed):
            super().__init__()
            self.images, self.batch_size, self.training, self.seed = (
                split.images, batch_size, training, seed)
            self.y = keras.utils.to_categorical(split.labels, NUM_CLASSES)
            self.epoch = 0  # set by EpochRandomness before each epoch's first batch
            self._order = (None, np.arange(len(split)))

        def order(self) -> np.ndarray:
            if self.training and self._order[0] != self.epoch:
                rng = np.random.default_rng([self.seed, self.epoch])
                self._order = (self.epoch, rng.permutation(len(self.y)))
            return self._order[1]

        def __len__(self):
            return int(np.ceil(len(self.y) / self.batch_size))

        def __getitem__(self, i):
            index = self.order()[i * self.batch_size:(i + 1) * self.batch_size]
            return normalise(self.images[index]), self.y[index]

    return Batches


def _epoch_randomness_class():
    import keras

    class EpochRandomness(keras.callbacks.Callback):
        """Draws each epoch's randomness from (seed, epoch): the batch order, the augmentation
        and the dropout masks.

        A resumed process starts its random streams afresh, so without this its first epoch
        replayed epoch 1's batches, augmentations and dropout masks in the same order, and the
        network, which had already fitted that sequence, scored far above the uninterrupted run
        on it (training accuracy 0.97 against 0.11 on the test's tiny set) until the replay ran
        past the restart point. Keyed by epoch, a resumed epoch sees what the uninterrupted
        run's did.
        """

        def __init__(self, batches):
            super().__init__()
            self.batches = batches

        def on_train_begin(self, logs=None):
            # Not saved with the weights, so a resumed run holds the construction-time seeds:
            # the same ones, since the seed is set before the model is built.
            self.states = [v for v in self.model.variables
                           if v.path.endswith("seed_generator_state")]
            self.bases = [int(np.asarray(v.numpy())[0]) for v in self.states]

        def on_epoch_begin(self, epoch, logs=None):
            self.batches.epoch = epoch
            for state, base in zip(self.states, self.bases):
                # [seed, counter]: each draw adds 1 to the counter; an epoch takes far fewer
                # than 2**20 draws, so the epochs' streams never overlap.
                state.assign(np.array([base, epoch << 20], dtype=state.dtype))

    return EpochRandomness


def _callback_class():
    import keras

    class Hook(keras.callbacks.Callback):
        """Relays progress to a plain function and stops when asked to."""

        def __init__(self, config, steps, on_progress, should_stop, history_path, plan):
            super().__init__()
            self.config, self.steps, self.plan = config, steps, plan
            self.on_progress, self.should_stop = on_progress, should_stop
            self.history_path = history_path
            self.history: list[dict[str, float]] = _read_history(history_path)
            self.epoch = 0
            self.cancelled = False
            self.start = time.monotonic()

        def _send(self, step, logs, epoch_end=False):
            if self.on_progress:
                self.on_progress(Progress(
                    self.epoch + 1, self.plan["epochs"], step, self.steps,
                    {k: float(v) for k, v in (logs or {}).items()}, list(self.history),
                    epoch_end, time.monotonic() - self.start,
                ))

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            self._send(batch + 1, logs)
            if self.should_stop and self.should_stop():
                self.cancelled = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
            row["lr"] = float(self.model.optimizer.learning_rate)
            self.history.append(row)
            _append_history(self.history_path, row)
            self._send(self.steps, logs, epoch_end=True)

    return Hook


def cosine(lr: float, epoch: int, epochs: int) -> float:
    """The learning rate of `epoch` (0-based) on a cosine from `lr` down to COSINE_FLOOR * lr."""
    return lr * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + np.cos(np.pi * epoch / max(1, epochs))))


def averaging_start(config: TrainConfig, epochs: int) -> int:
    """The first epoch (0-based) whose weights go into the average: `epochs` when not averaging."""
    if config.average <= 0:
        return epochs
    return min(epochs - 1, max(0, round(epochs * (1 - config.average))))


def _schedule_class():
    import keras

    class Schedule(keras.callbacks.Callback):
        """Sets each epoch's learning rate on a cosine over the planned epochs; while the weights
        are averaged the rate holds where it was, so the averaged points differ (as SWA does)."""

        def __init__(self, config, plan):
            super().__init__()
            self.config, self.plan = config, plan

        def on_epoch_begin(self, epoch, logs=None):
            hold = averaging_start(self.config, self.plan["epochs"])
            self.model.optimizer.learning_rate.assign(
                cosine(self.config.learning_rate, min(epoch, hold), self.plan["epochs"]))

    return Schedule


def _averager_class():
    import keras

    class Averager(keras.callbacks.Callback):
        """Keeps the running mean of the network's weights over the epochs from `averaging_start`,
        saved after each epoch so that --resume carries on with it."""

        def __init__(self, config, network, plan, path):
            super().__init__()
            self.config, self.network, self.plan, self.path = config, network, plan, path
            self.mean: list[np.ndarray] | None = None
            self.epochs: list[int] = []
            if path.is_file():
                with np.load(path) as saved:
                    self.epochs = saved["epochs"].tolist()
                    self.mean = [saved[f"w{i}"] for i in range(len(saved.files) - 1)]

        def on_epoch_end(self, epoch, logs=None):
            if epoch < averaging_start(self.config, self.plan["epochs"]) or epoch + 1 in self.epochs:
                return
            weights = self.network.get_weights()
            n = len(self.epochs)
            self.mean = weights if self.mean is None else [
                m + (w - m) / (n + 1) for m, w in zip(self.mean, weights)]
            self.epochs.append(epoch + 1)
            staging = self.path.with_suffix(".tmp.npz")
            np.savez(staging, epochs=np.array(self.epochs),
                     **{f"w{i}": m for i, m in enumerate(self.mean)})
            staging.replace(self.path)

    return Averager


def recompute_batch_norm(model, images: np.ndarray, batch_size: int = 256) -> None:
    """Set every BatchNormalization layer's moving statistics to their mean over `images`, as
    the network sees them at inference: no augmentation and no dropout.

    During training the statistics follow augmented faces with dropout on, which is not what a
    photo looks like; averaged weights need new statistics in any case. A momentum of
    (i - 1) / i at batch i turns Keras' moving average into an exact running mean.
    """
    import keras

    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    momenta, rates = [layer.momentum for layer in norms], [layer.rate for layer in drops]
    for layer in norms:
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, "float32"))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape, "float32"))
    for layer in drops:
        layer.rate = 0.0
    try:
        for i, start in enumerate(range(0, len(images), batch_size), start=1):
            for layer in norms:
                layer.momentum = (i - 1) / i
            model(normalise(images[start:start + batch_size]), training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
        for layer, rate in zip(drops, rates):
            layer.rate = rate


def _time_budget_class():
    import keras

    class TimeBudget(keras.callbacks.Callback):
        """For --minutes: plans the epochs from how long the second one took (the first compiles)
        and stops after the last."""

        def __init__(self, config, plan, plan_path, spent_s):
            super().__init__()
            self.config, self.plan, self.plan_path = config, plan, plan_path
            self.budget_s = config.minutes * 60 - spent_s  # a resumed run has spent some already
            self.ends: list[float] = []

        def on_train_begin(self, logs=None):
            self.start = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            self.ends.append(time.monotonic())
            if len(self.ends) == 2 and not self.plan_path.is_file():
                per_epoch = self.ends[1] - self.ends[0]
                left = self.budget_s - (self.ends[1] - self.start)
                fit = epoch + 1 + int(left // per_epoch)
                self.plan["epochs"] = max(epoch + 1, min(self.config.epochs, fit))
                self.plan_path.write_text(json.dumps(self.plan))
                _log(self.config, f"\n{self.config.minutes:g} minutes: {self.plan['epochs']} epochs "
                                  f"of {per_epoch:.1f} s")
            if time.monotonic() - self.start > self.budget_s:
                # Out of time: the first epoch took it all, or later ones ran slower than planned.
                self.plan["epochs"] = epoch + 1
            if epoch + 1 >= self.plan["epochs"]:
                self.model.stop_training = True

    return TimeBudget


def train(
    config: TrainConfig,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    dataset: data_module.Dataset | None = None,
) -> TrainResult:
    """Train a model on `config.data` and write it with its metrics and plots into `config.out`."""
    import keras

    keras.utils.set_random_seed(config.seed)
    out = Path(config.out)
    state = out / STATE_DIR
    if config.resume:
        check_resumable(config, state)
    dataset = dataset or data_module.load(config.data)
    train_split, val_split, test_split = data_module.training_splits(dataset)
    _log(config, f"data: {dataset.report.source}: train {len(train_split)}, validation "
                 f"{len(val_split)}, test {len(test_split) if test_split else 0}")
    model = build_model(config.blocks)
    if config.init:
        _load_initial_weights(model, Path(config.init))

    # The inputs are good: only now may a fresh run discard an interrupted run's state.
    out.mkdir(parents=True, exist_ok=True)
    if not config.resume:
        shutil.rmtree(state, ignore_errors=True)  # a fresh run must not pick up its weights
        state.mkdir()
        (state / "config.json").write_text(json.dumps(asdict(config), indent=2))
    # Time and commands add up over resumed runs, so metrics.json tells the whole cost.
    ledger_path = state / "ledger.json"
    ledger = json.loads(ledger_path.read_text()) if ledger_path.is_file() else {"commands": [], "seconds": 0.0}
    ledger["commands"].append(_command_line())

    steps = int(np.ceil(len(train_split) / config.batch_size))
    fitted = trainable(model, config.augment)
    per_epoch_schedule = bool(config.minutes or config.average)
    fitted.compile(
        optimizer=make_optimizer(config.optimizer, config.learning_rate,
                                 None if per_epoch_schedule else steps * config.epochs),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )
    # With --minutes the number of epochs is only known after the second one.
    plan_path = state / "plan.json"
    plan = json.loads(plan_path.read_text()) if plan_path.is_file() else {"epochs": config.epochs}
    hook = _callback_class()(config, steps, on_progress, should_stop, state / "history.csv", plan)
    prior_seconds = ledger["seconds"]

    def record_time(epoch, logs):
        ledger["seconds"] = prior_seconds + (time.monotonic() - started)
        ledger_path.write_text(json.dumps(ledger))

    best_path = state / "best.keras"
    callbacks = [
        keras.callbacks.BackupAndRestore(str(state / "backup"), delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(str(best_path), monitor="val_accuracy", save_best_only=True),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config.patience),
        keras.callbacks.LambdaCallback(on_epoch_end=record_time),
        keras.callbacks.TerminateOnNaN(),
        hook,
    ]
    if per_epoch_schedule:
        callbacks.append(_schedule_class()(config, plan))
    if config.minutes:
        callbacks.append(_time_budget_class()(config, plan, plan_path, prior_seconds))
    averager = _averager_class()(config, model, plan, state / "average.npz")
    if config.average:
        callbacks.append(averager)
    batches = make_dataset(train_split, config.batch_size, True, config.seed)
    callbacks.append(_epoch_randomness_class()(batches))
    started = time.monotonic()
    try:
        fitted.fit(
            batches,
            validation_data=make_dataset(val_split, 512, False, config.seed),
            epochs=config.epochs,
            callbacks=callbacks,
            shuffle=False,  # Batches shuffles, by epoch
            verbose=config.verbose,
        )
    except BaseException:
        _after_failure(config, state)
        raise
    seconds = prior_seconds + (time.monotonic() - started)
    if hook.cancelled:
        _log(config, "training cancelled: the previous model is left as it was")
        return TrainResult(out, out / MODEL_FILE, None, hook.history, False, True, seconds)

    history = hook.history
    if best_path.is_file():
        model = keras.models.load_model(best_path, compile=False)
        if model.name != NAME:  # saved with its augmentation layers in front
            model = model.get_layer(NAME)
    choice = None
    if len(val_split):
        if on_progress:
            on_progress(Progress(len(history), plan["epochs"], steps, steps, {}, list(history),
                                 True, time.monotonic() - started, stage=CHOOSING))
        model, choice = choose_model(config, model, averager, train_split, val_split)
    if not is_finite(model, val_split.images if len(val_split) else train_split.images):
        shutil.rmtree(state, ignore_errors=True)  # a diverged run is not worth resuming
        raise TrainError(
            f"training diverged (loss {_last_loss(history)}): nothing was written and {out} is "
            f"as it was; train again with a lower --lr (this run used {config.learning_rate:g})")
    evaluation = evaluate_model(model, test_split.images, test_split.labels) if test_split else None
    stopped_early = len(history) < plan["epochs"]
    metrics = _metrics(config, dataset, train_split, val_split, test_split, evaluation, history,
                       seconds, stopped_early, ledger["commands"], plan["epochs"],
                       averager.epochs)
    if choice:
        metrics["model_choice"] = choice
    previous = None if config.force else previous_score(out / MODEL_FILE, val_split)
    kept_previous = False
    if previous is not None:
        new_score = evaluate_model(model, val_split.images, val_split.labels).accuracy
        kept_previous = previous > new_score  # a tie goes to the new model
    target = out / CANDIDATE_DIR if kept_previous else out
    write_artifacts(model, metrics, history, target)
    shutil.rmtree(state, ignore_errors=True)
    if kept_previous:
        _log(config, f"kept the model already in {out}: it scores {previous:.4f} on this run's "
                     f"validation faces, the new one {new_score:.4f}. The new model and its metrics "
                     f"are in {target}; train with --force to replace the old one regardless.")
    if evaluation:
        _log(config, f"test accuracy {evaluation.accuracy:.4f}, macro-F1 {evaluation.macro_f1:.4f}")
    return TrainResult(out, target / MODEL_FILE, evaluation, history, stopped_early, False, seconds,
                       kept_previous=kept_previous)


def check_resumable(config: TrainConfig, state: Path) -> None:
    """TrainError unless `state` holds an interrupted run that `config` can carry on."""
    saved_path = state / "config.json"
    if not saved_path.is_file() or not (state / "backup").is_dir():
        raise TrainError(f"--resume: {config.out} holds no interrupted run (no finished epoch in "
                         f"{state}); train without --resume to start afresh")
    saved = json.loads(saved_path.read_text())
    mine = json.loads(json.dumps(asdict(config)))  # tuples as lists, as the saved file has them
    for key in RESUME_MUST_MATCH:
        if saved.get(key) != mine[key]:
            raise TrainError(
                f"--resume: the interrupted run in {config.out} used {_setting(key, saved.get(key))}"
                f", not {_setting(key, mine[key])}; resume with the same settings, or train "
                "without --resume to start afresh (which discards it)")


def _setting(key: str, value) -> str:
    """A saved setting as the command line would give it."""
    if key == "blocks" and isinstance(value, list):
        return "--blocks " + ",".join(f"{w}x{n}" for w, n in value)
    if key == "augment":
        return "augmentation" if value else "--no-augment"
    return f"--{key} {value}"


def _after_failure(config: TrainConfig, state: Path) -> None:
    """After a crash or Ctrl-C: keep what --resume needs, or leave nothing behind."""
    if (state / "backup").is_dir():
        _log(config, f"stopped: run the same command with --resume to carry on from the last "
                     f"finished epoch (saved in {state})")
    else:
        shutil.rmtree(state, ignore_errors=True)  # not one epoch finished: nothing to resume


def is_finite(model, faces: np.ndarray) -> bool:
    """Whether every weight, and the probabilities for a few `faces`, are finite numbers."""
    if not all(np.isfinite(w).all() for w in model.get_weights()):
        return False
    return bool(np.isfinite(model.predict(normalise(faces[:64]), verbose=0)).all())


def _last_loss(history: list[dict[str, float]]) -> str:
    losses = [row.get("loss", float("nan")) for row in history]
    return f"{losses[-1]} at epoch {len(losses)}" if losses else "not a number"


def previous_score(path: Path, val_split) -> float | None:
    """Validation accuracy of the model already at `path`; None when there is none to keep
    (no file, or one that cannot be loaded as a classifier, or no validation faces)."""
    from .model import load_model

    if not path.is_file() or not len(val_split):
        return None
    try:
        previous = load_model(path)
    except (OSError, ValueError):
        return None
    return evaluate_model(previous, val_split.images, val_split.labels).accuracy


def choose_model(config, best, averager, train_split, val_split):
    """The best epoch as trained, the same with its batch-norm statistics recomputed, or the
    averaged weights: whichever scores highest on validation, and every candidate's score."""
    candidates = {"best epoch": best}
    recomputed = build_model(config.blocks)
    recomputed.set_weights(best.get_weights())
    candidates["best epoch, batch norm recomputed"] = recomputed
    if averager.mean is not None:
        averaged = build_model(config.blocks)
        averaged.set_weights(averager.mean)
        candidates[f"average of epochs {averager.epochs[0]}-{averager.epochs[-1]}"] = averaged
    _log(config, "recomputing the batch-norm statistics on the training faces")
    for model in candidates.values():
        if model is not best:
            recompute_batch_norm(model, train_split.images)
    scores = {name: evaluate_model(model, val_split.images, val_split.labels).accuracy
              for name, model in candidates.items()}
    kept = max(scores, key=scores.get)  # ties keep the earlier, simpler candidate
    _log(config, "validation accuracy: " + ", ".join(f"{n} {a:.4f}" for n, a in scores.items())
         + f": keeping the {kept}")
    return candidates[kept], {"val_accuracy": scores, "kept": kept}


def _load_initial_weights(model, path: Path) -> None:
    from .model import load_model

    source = load_model(path)
    shapes = [w.shape for w in source.get_weights()]
    if shapes != [w.shape for w in model.get_weights()]:
        raise ValueError(f"{path}: its layers do not match the network being trained, so its "
                         "weights cannot be the starting point (train without --init)")
    model.set_weights(source.get_weights())


def _log(config: TrainConfig, message: str) -> None:
    if config.verbose:
        print(message, file=sys.stderr, flush=True)


def _read_history(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    with path.open() as f:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    for row in rows:
        row["epoch"] = int(row["epoch"])
    return rows


def _append_history(path: Path, row: dict[str, float]) -> None:
    """Add one epoch's row and push it to disk at once: a killed run keeps every finished epoch.

    (Keras' CSVLogger buffers its file, so a killed run lost its rows before a --resume.)
    """
    new = not path.is_file()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
        f.flush()
        os.fsync(f.fileno())


def _command_line() -> str:
    """How this process was started, as a user would type it."""
    if sys.argv and sys.argv[0].endswith(("emotion/__main__.py", "emotion\\__main__.py")):
        return " ".join(["python -m emotion", *sys.argv[1:]])
    return " ".join(sys.argv) or "python"


def _metrics(config, dataset, train_split, val_split, test_split, evaluation, history, seconds,
             stopped_early, commands, epochs, averaged) -> dict:
    import keras

    best = max(history, key=lambda r: r.get("val_accuracy", 0)) if history else {}
    return {
        "test": evaluation.to_dict() if evaluation else None,
        "best_epoch": int(best.get("epoch", 0)),
        "best_val_accuracy": round(float(best.get("val_accuracy", 0)), 4),
        "epochs_run": len(history),
        "stopped_early": stopped_early,
        "data": {
            "source": dataset.report.source,
            "train": len(train_split), "validation": len(val_split),
            "test": len(test_split) if test_split else 0,
            "train_per_class": train_split.counts(),
            "resized": dataset.report.resized,
            "unreadable": len(dataset.report.unreadable),
        },
        "hyperparameters": {
            "optimizer": config.optimizer, "epochs": epochs, "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "schedule": _schedule_text(config, averaged),
            "minutes": config.minutes, "average": config.average,
            "augment": config.augment, "label_smoothing": config.label_smoothing,
            "patience": config.patience, "blocks": [list(b) for b in config.blocks],
            "init": config.init,
            "seed": config.seed,
        },
        # Every command that worked on this model, the first and any --resume after it.
        "commands": commands,
        "train_seconds": round(seconds, 1),
        "versions": {"python": platform.python_version(), "keras": keras.__version__,
                     "numpy": np.__version__,
                     "backend": keras.backend.backend(), **_backend_version()},
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
        "labels": list(EMOTIONS),
    }


def _schedule_text(config: TrainConfig, averaged: list[int]) -> str:
    text = "cosine decay to 1%" + (", set each epoch" if config.minutes or config.average else "")
    if averaged:
        # From the epochs really averaged: a run the clock stopped early planned more of them.
        text += f", held from epoch {averaged[0]} while the weights are averaged"
    return text


def _backend_version() -> dict[str, str]:
    import keras

    name = keras.backend.backend()  # tensorflow, jax or torch: each is also its module's name
    return {name: __import__(name).__version__}


def write_artifacts(model, metrics: dict, history: list[dict[str, float]], out: Path) -> None:
    """Write model, metrics.json, history.csv and plots into a staging folder, then move each in."""
    from .plots import plot_confusion, plot_history

    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        save_model_atomic(model, staging / MODEL_FILE)
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
        if history:
            with (staging / "history.csv").open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(history[0]))
                writer.writeheader()
                writer.writerows(history)
            plot_history(history, staging / "training_curves.png")
        if metrics.get("test"):
            plot_confusion(metrics["test"]["confusion_matrix"], staging / "confusion_matrix.png")
        # Everything is written: only now do the old files get replaced, each by one rename.
        for f in staging.iterdir():
            f.replace(out / f.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
