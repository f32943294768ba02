"""What a training run is given and what it reports. No Keras: the CLI, the jobs and the pages
import this without loading TensorFlow."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path

from ..config import MODELS_DIR, SEED
from ..errors import TrainError
from ..evaluate import Evaluation
from ..files import write_text_atomic
from ..model import DEFAULT_BLOCKS

TINY_BLOCKS = ((8, 1), (16, 1))  # for trying the pipeline out in seconds
STATE_DIR = ".train-state"  # in `out`: an interrupted run's state, what --resume continues from
CANDIDATE_DIR = "candidate"  # in `out`: a new model that scored below the one already there
COSINE_FLOOR = 0.01  # the learning rate decays to 1% of its start
MAX_BLOCKS, MAX_WIDTH, MAX_CONVS = 5, 4096, 16
MAX_MIXUP = 10.0  # Beta(10, 10) already blends nearly half and half
MAX_BALANCE = 1.0  # 1: each emotion weighs as much in the loss as every other, whatever its count
MAX_LR = 10.0  # far above any useful rate (1e-3 for Adam, 1e-2 for SGD); beyond it Keras fails


@dataclass
class TrainConfig:
    """One training run's settings; TrainError on construction for one that cannot train a
    useful model (`validate`)."""

    data: str
    optimizer: str = "adam"
    epochs: int = 60
    batch_size: int = 64
    lr: float | None = None  # None: 1e-3 for Adam, 1e-2 for SGD
    augment: bool = True
    robust: bool = True  # augmentation adds light, contrast, blur and noise (datasets.augmenter)
    # "bf16": mixed bfloat16 (float32 weights, bf16 maths), for processors and GPUs with bf16
    # matrix units; the model written is float32 either way (README, "Training time").
    precision: str = "float32"
    label_smoothing: float = 0.1
    mixup: float = 0.0  # Beta(mixup, mixup) blends pairs of faces and their labels; 0: off
    balance: float = 0.0  # class-balanced loss: weights (mean count / count) ** balance; 0: off
    teachers: tuple[str, ...] = ()  # models whose probabilities share the targets (distill.py)
    distill: float = 0.5  # the share of each target given to the teachers
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

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """TrainError naming the first setting that cannot train a useful model, by its command
        line option; nothing is read or written (`out` is only looked at)."""
        default = {f.name: f.default for f in fields(self)}
        if self.epochs < 1:
            raise TrainError(f"--epochs {self.epochs}: give at least 1 epoch (the default is "
                             f"{default['epochs']})")
        if self.batch_size < 1:
            raise TrainError(f"--batch-size {self.batch_size}: give at least 1 (the default is "
                             f"{default['batch_size']})")
        if self.lr is not None and not (math.isfinite(self.lr) and 0 < self.lr <= MAX_LR):
            raise TrainError(f"--lr {self.lr:g}: give a positive learning rate up to {MAX_LR:g}, "
                             "such as 1e-3")
        self._validate_blocks()
        if self.patience < 0:
            raise TrainError(f"--patience {self.patience}: give 0 or more epochs (the default is "
                             f"{default['patience']})")
        if self.minutes is not None and not (math.isfinite(self.minutes) and self.minutes > 0):
            raise TrainError(f"--minutes {self.minutes:g}: give a positive time limit, such as 60")
        if not 0 <= self.average <= 1:
            raise TrainError(f"--average {self.average:g}: give the fraction of the epochs to "
                             "average, from 0 (off) to 1, e.g. 0.75")
        if not (math.isfinite(self.mixup) and 0 <= self.mixup <= MAX_MIXUP):
            raise TrainError(f"--mixup {self.mixup:g}: give 0 (off) or a Beta parameter up to "
                             f"{MAX_MIXUP:g}, such as 0.2")
        if not (math.isfinite(self.balance) and 0 <= self.balance <= MAX_BALANCE):
            raise TrainError(f"--balance {self.balance:g}: give 0 (off) up to {MAX_BALANCE:g} "
                             "(every emotion weighs the same), such as 0.5")
        if not (math.isfinite(self.distill) and 0 <= self.distill <= 1):
            raise TrainError(f"--distill {self.distill:g}: give the share of each target given "
                             "to the teachers, from 0 to 1, such as 0.5")
        for teacher in self.teachers:
            if not Path(teacher).is_file():
                raise TrainError(f"--teacher {teacher}: no such model file; give a .keras model "
                                 "such as models/emotion_cnn.keras")
        if Path(self.out).exists() and not Path(self.out).is_dir():
            raise TrainError(f"--out {self.out} is a file: give a folder for the model and its "
                             "metrics")

    def _validate_blocks(self) -> None:
        if len(self.blocks) > MAX_BLOCKS:
            # Each block halves the 48 px face: 24, 12, 6, 3, 1, and a sixth would leave nothing.
            raise TrainError(f"--blocks: {len(self.blocks)} blocks, at most {MAX_BLOCKS} (each "
                             "halves the 48x48 face)")
        if any(w > MAX_WIDTH or n > MAX_CONVS for w, n in self.blocks):
            raise TrainError(f"--blocks: at most {MAX_WIDTH} filters and {MAX_CONVS} convolutions "
                             "a block")

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 1e-3 if self.optimizer == "adam" else 1e-2

    @property
    def per_epoch_schedule(self) -> bool:
        """Whether a callback sets the rate each epoch (the epochs are planned, or some held)."""
        return bool(self.minutes or self.average)


class Stage(str, Enum):
    """What a run is doing; `text` says it to a person."""

    TRAINING = "training"
    CHOOSING = "choosing"

    @property
    def text(self) -> str:
        return {
            Stage.TRAINING: "training",
            Stage.CHOOSING: "recomputing batch-norm statistics and choosing the model on validation",
        }[self]


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
    stage: Stage = Stage.TRAINING


@dataclass
class TrainResult:
    out_dir: Path
    model_path: Path
    evaluation: Evaluation | None
    history: list[dict[str, float]]
    stopped_early: bool = False
    cancelled: bool = False
    train_seconds: float = 0.0
    kept_previous: bool = False  # the model already in `out` scored better: the new one is beside it


@dataclass
class EpochPlan:
    """How many epochs the run will train: --epochs, or what --minutes fits, once timed.

    Shared by the callbacks that need it, and saved so that --resume keeps the plan."""

    epochs: int
    path: Path | None = None

    @classmethod
    def load(cls, path: Path, epochs: int) -> EpochPlan:
        saved = json.loads(path.read_text())["epochs"] if path.is_file() else epochs
        return cls(saved, path)

    @property
    def fixed(self) -> bool:
        """Whether the plan was saved (timed) already."""
        return self.path is not None and self.path.is_file()

    def save(self) -> None:
        write_text_atomic(self.path, json.dumps({"epochs": self.epochs}))
