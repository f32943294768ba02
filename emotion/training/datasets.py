"""The faces `fit` trains on: batches in an order drawn from (seed, epoch), and the augmentation
that runs in front of the network."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from ..data import Split
from ..labels import NUM_CLASSES
from ..preprocess import normalise


@keras.saving.register_keras_serializable(package="emotion")
class RandomGamma(keras.layers.Layer):
    """Each face's pixels raised to a power between 1/`most` and `most`: dim (gamma > 1) and harsh
    (gamma < 1) light, which bend the tones as brightness and contrast alone do not."""

    def __init__(self, most: float = 2.2, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.most, self.seed = most, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=True):
        if not training:
            return x
        log_gamma = keras.random.uniform((keras.ops.shape(x)[0], 1, 1, 1), -np.log(self.most),
                                         np.log(self.most), seed=self.seed_generator)
        return keras.ops.power(keras.ops.clip(x, 1e-6, 1.0),
                               keras.ops.cast(keras.ops.exp(log_gamma), x.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "most": self.most, "seed": self.seed}


def augmenter(robust: bool = True) -> keras.Sequential:
    """Flip, small shift, rotation and zoom, drawn afresh for every batch; `robust` adds what
    other cameras and detectors do to a face (emotion.robustness): looser and tighter framing,
    gamma, brightness, contrast, blur and sensor noise."""
    shift, zoom = (0.12, 0.15) if robust else (0.1, 0.1)
    steps = [
        layers.RandomFlip("horizontal"),
        layers.RandomTranslation(shift, shift, fill_mode="nearest"),
        layers.RandomRotation(0.04, fill_mode="nearest"),  # about +-14 degrees
        layers.RandomZoom(zoom, fill_mode="nearest"),
    ]
    if robust:
        # Faces are in [0, 1] here (normalise runs before the network).
        steps += [
            RandomGamma(2.2),
            layers.RandomBrightness(0.25, value_range=(0, 1)),
            layers.RandomContrast(0.5, value_range=(0, 1)),
            # From none to about a Gaussian of sigma 1.6 px, the blur of a cheap or moving camera.
            layers.RandomGaussianBlur(factor=(0.0, 1.0), kernel_size=7, sigma=(0.1, 1.6),
                                      value_range=(0, 1)),
            layers.GaussianNoise(0.04),  # about 10 grey levels of sensor noise
        ]
    return keras.Sequential(steps, name="augment")


def trainable(model: keras.Model, augment: bool, robust: bool = True) -> keras.Model:
    """The model that `fit` trains: augmentation layers then `model`, or `model` itself.

    In front of the network, the augmentation's random state is the model's, which
    `EpochRandomness` keys to the epoch; it also runs inside the compiled step (on a GPU there).
    """
    if not augment:
        return model
    return keras.Sequential([keras.Input(model.input_shape[1:]), augmenter(robust), model],
                            name="augmented")


def mix(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
        alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Mixup (Zhang et al., 2018): each face blended with another face of the batch, and its
    label with that face's label in the same share, drawn from Beta(alpha, alpha)."""
    share = rng.beta(alpha, alpha, size=len(images)).astype(np.float32)
    share = np.maximum(share, 1 - share)  # each face keeps the larger part, so its label leads
    partner = rng.permutation(len(images))
    mixed = [share.reshape((-1,) + (1,) * (a.ndim - 1)) for a in (images, labels)]
    return (mixed[0] * images + (1 - mixed[0]) * images[partner],
            mixed[1] * labels + (1 - mixed[1]) * labels[partner])


def balanced_weights(labels: np.ndarray, power: float) -> np.ndarray:
    """Each emotion's weight in a class-balanced loss: (mean count / its count) ** `power`,
    scaled so that the faces of `labels` weigh 1 on average (the learning rate keeps its meaning)."""
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64)
    weights = np.ones(NUM_CLASSES)
    present = counts > 0
    weights[present] = (counts[present].mean() / counts[present]) ** power
    return (weights / (weights @ counts / counts.sum())).astype(np.float32)


class Batches(keras.utils.PyDataset):
    """A split's normalised faces and one-hot labels (or `targets`, one row a face, such as
    `distill.distilled_targets`) in batches; when training, in an order drawn from (seed, epoch),
    the epoch being set by `EpochRandomness` before its first batch, and mixed (`mix`) when
    `mixup` is above 0. With `class_weights`, each face also has a weight in the loss: its
    target's (mixed or distilled) shares of the emotions' weights."""

    def __init__(self, split: Split, batch_size: int, training: bool, seed: int,
                 mixup: float = 0.0, targets: np.ndarray | None = None,
                 class_weights: np.ndarray | None = None):
        super().__init__()
        self.images, self.batch_size, self.training, self.seed = (
            split.images, batch_size, training, seed)
        self.mixup, self.class_weights = mixup, class_weights
        self.y = (keras.utils.to_categorical(split.labels, NUM_CLASSES) if targets is None
                  else targets)
        self.epoch = 0
        self._order = (None, np.arange(len(split)))

    def order(self) -> np.ndarray:
        if self.training and self._order[0] != self.epoch:
            rng = np.random.default_rng([self.seed, self.epoch])
            self._order = (self.epoch, rng.permutation(len(self.y)))
        return self._order[1]

    def __len__(self) -> int:
        return int(np.ceil(len(self.y) / self.batch_size))

    def __getitem__(self, i: int):
        index = self.order()[i * self.batch_size:(i + 1) * self.batch_size]
        images, labels = normalise(self.images[index]), self.y[index]
        if self.training and self.mixup:
            # Keyed to (seed, epoch, batch), as the order is: a resumed run mixes the same pairs.
            rng = np.random.default_rng([self.seed, self.epoch, i, 1])
            images, labels = mix(images, labels.astype(np.float32), rng, self.mixup)
        if self.class_weights is not None:
            return images, labels, (labels @ self.class_weights).astype(np.float32)
        return images, labels
