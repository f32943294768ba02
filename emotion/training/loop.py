"""`train(config)`: data, model, compile, fit, choose, write, read top to bottom.

The model and its metrics and plots are written into `config.out` only once they are complete;
`on_progress` and `should_stop` let a caller (the Training page) follow and cancel.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import keras

from .. import data as data_module
from ..config import MODEL_FILE
from ..calibration import calibrate
from ..calibration import summary as calibration_summary
from ..evaluate import evaluate_model, predict_probabilities, score
from ..labels import EMOTIONS
from ..model import build_model
from .artifacts import build_metrics, write_artifacts
from .callbacks import (CosineSchedule, EpochRandomness, ProgressReporter, TimeBudget,
                        TrainingCancelled, WeightAverager, log)
from .config import (CANDIDATE_DIR, COSINE_FLOOR, EpochPlan, Progress, Stage, TrainConfig,
                     TrainError, TrainResult)
from .datasets import Batches, balanced_weights, trainable
from .distill import distilled_targets, teacher_probabilities
from .selection import choose_model, is_finite, keeps_previous, load_initial_weights
from .state import AtomicBackup, BestCheckpoint, RunState, run_lock


def train(
    config: TrainConfig,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    dataset: data_module.Dataset | None = None,
) -> TrainResult:
    """Train a model on `config.data` and write it with its metrics and plots into `config.out`;
    one run at a time in a folder (TrainError when another holds it)."""
    with run_lock(Path(config.out)):
        return _train(config, on_progress, should_stop, dataset)


def _train(config: TrainConfig, on_progress, should_stop, dataset) -> TrainResult:
    keras.utils.set_random_seed(config.seed)
    out, state = Path(config.out), RunState(Path(config.out))
    if config.resume:
        state.check_resumable(config)

    # The data and the network, both checked before anything in `out` changes.
    dataset = dataset or data_module.load(config.data)
    train_split, val_split, test_split = data_module.training_splits(dataset)
    log(config.verbose, f"data: {dataset.report.source}: train {len(train_split)}, validation "
                        f"{len(val_split)}, test {len(test_split) if test_split else 0}")
    with precision_policy(config.precision, config.verbose):
        model = build_model(config.blocks)
    if config.init:
        load_initial_weights(model, Path(config.init))
    targets = None
    if config.teachers:
        teachers = teacher_probabilities(config.teachers, train_split.images)
        log(config.verbose, f"teachers: {len(config.teachers)}, right on "
                            f"{(teachers.argmax(axis=1) == train_split.labels).mean():.1%} of the "
                            f"training faces; {config.distill:g} of each target is theirs")
        targets = distilled_targets(train_split.labels, teachers, config.distill)
    state.begin(config)

    # Fit, with the augmentation in front of the network.
    weights = balanced_weights(train_split.labels, config.balance) if config.balance else None
    if weights is not None:
        log(config.verbose, "class weights: " + ", ".join(
            f"{name} {w:.2f}" for name, w in zip(EMOTIONS, weights)))
    batches = Batches(train_split, config.batch_size, training=True, seed=config.seed,
                      mixup=config.mixup, targets=targets, class_weights=weights)
    fitted = trainable(model, config.augment, config.robust)
    fitted.compile(optimizer=make_optimizer(config, steps=len(batches)), metrics=["accuracy"],
                   loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing))
    plan = EpochPlan.load(state.plan, config.epochs)  # --minutes plans it after the second epoch
    reporter = ProgressReporter(plan=plan, steps=len(batches), history_path=state.history,
                                on_progress=on_progress, should_stop=should_stop)
    averager = WeightAverager(average=config.average, network=model, plan=plan, path=state.average)
    started = time.monotonic()
    try:
        fitted.fit(batches, validation_data=Batches(val_split, 512, training=False, seed=config.seed),
                   epochs=config.epochs, shuffle=False, verbose=config.verbose,
                   callbacks=make_callbacks(config, state=state, plan=plan, batches=batches,
                                            reporter=reporter, averager=averager, started=started))
    except TrainingCancelled:
        state.after_failure(config.verbose)  # the finished epochs stay resumable, as after Ctrl-C
    except BaseException:
        state.after_failure(config.verbose)
        raise
    seconds = state.prior_seconds + (time.monotonic() - started)
    if reporter.cancelled:
        log(config.verbose, "training cancelled: the previous model is left as it was")
        return TrainResult(out_dir=out, model_path=out / MODEL_FILE, evaluation=None,
                           history=reporter.history, cancelled=True, train_seconds=seconds)

    # Choose on validation, check, and write.
    history, choice = reporter.history, None
    model = as_float32(state.best_model() or model, config.precision, config.blocks)
    if len(val_split):
        reporter.announce(Stage.CHOOSING)
        model, choice = choose_model(config.blocks, best=model, averager=averager,
                                     train_split=train_split, val_split=val_split,
                                     verbose=config.verbose)
    if not is_finite(model, val_split.images if len(val_split) else train_split.images):
        state.discard()  # a diverged run is not worth resuming
        raise TrainError(f"training diverged (loss {history[-1]['loss'] if history else 'nan'}): "
                         f"nothing was written and {out} is as it was; train again with a lower "
                         f"--lr (this run used {config.learning_rate:g})")
    calibrated = None
    if len(val_split):
        # Last, on the chosen weights: T is folded into them, so what is written is calibrated.
        calibrated = calibrate(model, val_split.images, val_split.labels)
        log(config.verbose, f"calibration: temperature {calibrated.temperature:.3f}, validation "
                            f"ECE {calibrated.fitted_on.ece_before:.4f} -> "
                            f"{calibrated.fitted_on.ece_after:.4f}")
    evaluation, test_probs, views = None, None, None
    if test_split:
        test_probs = predict_probabilities(model, test_split.images)
        evaluation = score(test_split.labels, test_probs.argmax(axis=1), probs=test_probs)
        # What a photo gets by default (TTA): the Photo page shows the two side by side.
        views = evaluate_model(model, test_split.images, test_split.labels, tta=True)
    calibration = calibration_summary(calibrated, test_probs, test_split.labels if test_split
                                      else None) if calibrated else None
    metrics = build_metrics(config=config, dataset=dataset, splits=(train_split, val_split, test_split),
                            evaluation=evaluation, history=history, seconds=seconds,
                            stopped_early=len(history) < plan.epochs, commands=state.commands,
                            epochs=plan.epochs, averaged=averager.epochs, choice=choice,
                            calibration=calibration, views=views)
    # The kept candidate's validation accuracy, as choose_model measured it.
    new_score = choice["val_accuracy"][choice["kept"]] if choice else None
    kept = keeps_previous(new_score=new_score, previous=out / MODEL_FILE, val_split=val_split,
                          force=config.force)
    target = out / CANDIDATE_DIR if kept else out
    write_artifacts(model, metrics=metrics, history=history, out=target)
    state.discard()
    if kept:
        log(config.verbose, f"kept the model already in {out}: it scores {kept[0]:.4f} on this "
                            f"run's validation faces, the new one {kept[1]:.4f}. The new model and "
                            f"its metrics are in {target}; train with --force to replace the old "
                            "one regardless.")
    if evaluation:
        log(config.verbose, f"test accuracy {evaluation.accuracy:.4f}, macro-F1 {evaluation.macro_f1:.4f}")
    return TrainResult(out_dir=out, model_path=target / MODEL_FILE, evaluation=evaluation,
                       history=history, stopped_early=metrics["stopped_early"],
                       train_seconds=seconds, kept_previous=kept is not None)


# What a processor must list for bfloat16 to be fast; without either, TensorFlow emulates it.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def has_bf16_instructions(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether the processor lists bfloat16 instructions; None where that cannot be read."""
    try:
        flags = {word for line in cpuinfo.read_text().splitlines()
                 if line.startswith("flags") for word in line.split(":", 1)[-1].split()}
    except OSError:  # not Linux, or no /proc
        return None
    return any(flag in flags for flag in BF16_FLAGS) if flags else None


def trains_on_cpu() -> bool:
    """Whether Keras's backend trains on the processor (no GPU in use)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.default_backend() == "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return not tf.config.list_physical_devices("GPU")
    if backend == "torch":
        import torch

        return not torch.cuda.is_available()
    return True


@contextmanager
def precision_policy(precision: str, verbose: int = 0):
    """Layers built inside use mixed bfloat16 for "bf16", float32 otherwise."""
    if precision not in ("float32", "bf16"):
        raise TrainError(f"precision {precision!r}: expected float32 or bf16")
    if precision == "bf16" and trains_on_cpu() and has_bf16_instructions() is False:
        # Measured with scripts/bf16_throughput.py on an AVX2-only EPYC: 0.10x float32's speed.
        log(verbose, "warning: this processor lists no bfloat16 instructions (avx512_bf16 or "
                     "amx_bf16), so bf16 trains several times slower here than float32 (10x on "
                     "one such CPU); --precision float32 is faster")
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bf16" else "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def as_float32(model: keras.Model, precision: str,
               blocks: tuple[tuple[int, int], ...]) -> keras.Model:
    """The network in float32: what is chosen, calibrated and written, whatever trained it."""
    if precision == "float32":
        return model
    plain = build_model(blocks)
    plain.set_weights(model.get_weights())
    return plain


def make_optimizer(config: TrainConfig, steps: int) -> keras.optimizers.Optimizer:
    """Adam or Nesterov SGD; with cosine decay over the run's steps, or a plain rate that
    `CosineSchedule` sets each epoch."""
    lr = config.learning_rate
    if not config.per_epoch_schedule:
        lr = keras.optimizers.schedules.CosineDecay(
            lr, decay_steps=max(1, steps * config.epochs), alpha=COSINE_FLOOR)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(lr)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True)
    raise TrainError(f"unknown optimizer {config.optimizer!r}: expected adam or sgd")


def make_callbacks(config: TrainConfig, *, state: RunState, plan: EpochPlan, batches: Batches,
                   reporter: ProgressReporter, averager: WeightAverager,
                   started: float) -> list[keras.callbacks.Callback]:
    """Backup for --resume, the best epoch, early stopping, the ledger's clock, a stop on NaN,
    progress, the per-epoch randomness, and the schedule, time budget and average when asked."""
    callbacks = [
        AtomicBackup(str(state.backup), delete_checkpoint=False),
        BestCheckpoint(state.best, best=state.best_so_far() if config.resume else None),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config.patience),
        keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: state.record(time.monotonic() - started)),
        keras.callbacks.TerminateOnNaN(),
        reporter,
        EpochRandomness(batches),
    ]
    if config.per_epoch_schedule:
        callbacks.append(CosineSchedule(config.learning_rate, config.average, plan))
    if config.minutes:
        callbacks.append(TimeBudget(minutes=config.minutes, max_epochs=config.epochs, plan=plan,
                                    spent_s=state.prior_seconds, verbose=config.verbose))
    if config.average:
        callbacks.append(averager)
    return callbacks
