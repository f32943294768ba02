"""The faces `fit` trains on: batches in an order drawn from (seed, epoch), and the augmentation
that runs in front of the network."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from ..data import Split
from ..labels import NUM_CLASSES
from ..preprocess import normalise


def augmenter(robust: bool = True) -> keras.Sequential:
    """Flip, small shift, rotation and zoom, drawn afresh for every batch; `robust` adds what
    other cameras and detectors do to a face (emotion.robustness): looser and tighter framing,
    light, contrast, blur and sensor noise."""
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
            layers.RandomBrightness(0.25, value_range=(0, 1)),
            layers.RandomContrast(0.5, value_range=(0, 1)),
            # From none to about a Gaussian of sigma 1.6 px, the blur of a cheap or moving camera.
            layers.RandomGaussianBlur(factor=(0.0, 1.0), kernel_size=5, sigma=(0.1, 1.6),
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


class Batches(keras.utils.PyDataset):
    """A split's normalised faces and one-hot labels in batches; when training, in an order
    drawn from (seed, epoch), the epoch being set by `EpochRandomness` before its first batch."""

    def __init__(self, split: Split, batch_size: int, training: bool, seed: int):
        super().__init__()
        self.images, self.batch_size, self.training, self.seed = (
            split.images, batch_size, training, seed)
        self.y = keras.utils.to_categorical(split.labels, NUM_CLASSES)
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
        return normalise(self.images[index]), self.y[index]
