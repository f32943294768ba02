"""`average`: two models of one network averaged weight by weight, then given their own
batch-norm statistics, calibrated and scored; bad options refused before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emotion.__main__ import main
from emotion.model import build_model, load_model, save_model_atomic

TINY = ((8, 1), (16, 1))


@pytest.fixture
def two_models(tmp_path):
    paths = []
    for name in ("first", "second"):
        paths.append(save_model_atomic(build_model(TINY), tmp_path / name / "emotion_cnn.keras"))
    return paths


def test_the_average_is_written_with_its_scores(tiny_folder, two_models, tmp_path, capsys):
    first, second = two_models
    out = tmp_path / "average"
    assert main(["average", str(first), str(second), "--share", "0.25", "--data",
                 str(tiny_folder), "--out", str(out)]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert said["share"] == 0.25 and said["model"] == str(out / "emotion_cnn.keras")

    averaged = load_model(out / "emotion_cnn.keras")
    a, b = load_model(first), load_model(second)
    conv = next(i for i, layer in enumerate(a.layers) if type(layer).__name__ == "Conv2D")
    np.testing.assert_allclose(averaged.layers[conv].kernel.numpy(),
                               0.75 * a.layers[conv].kernel.numpy()
                               + 0.25 * b.layers[conv].kernel.numpy(), rtol=1e-5, atol=1e-6)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["averaged"]["models"] == [str(first), str(second)]
    assert metrics["averaged"]["made_by"] == [None, None]  # built here, not by train
    assert metrics["test"]["n_images"] == 14 and metrics["test_tta"]["n_images"] == 14
    assert metrics["calibration"]["temperature"] > 0
    from emotion.registry import saved_at
    assert saved_at(metrics) is not None  # kept through the second write
    assert (out / "reliability.png").is_file() and (out / "confusion_matrix.png").is_file()


@pytest.mark.parametrize("problem, says", [
    ("share", "between 0 and 1"), ("missing", "no such model file"),
    ("onto an input", "holds one of the models"), ("other network", "layers differ")])
def test_bad_options_are_refused_and_nothing_is_written(tiny_folder, two_models, tmp_path,
                                                        capsys, problem, says):
    first, second = two_models
    before = {p: p.read_bytes() for p in (first, second)}
    out = tmp_path / "average"
    args = ["average", str(first), str(second), "--data", str(tiny_folder), "--out", str(out)]
    if problem == "share":
        args += ["--share", "1.5"]
    elif problem == "missing":
        args[2] = str(tmp_path / "nowhere.keras")
    elif problem == "onto an input":
        args[-1] = str(second.parent)
    else:
        save_model_atomic(build_model(((4, 1),)), second)
        before[second] = second.read_bytes()
    assert main(args) != 0
    assert says in capsys.readouterr().err
    assert not out.exists()
    assert {p: p.read_bytes() for p in (first, second)} == before
