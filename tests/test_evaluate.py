"""Scores on predictions whose accuracy, F1 and confusion matrix are worked out by hand."""

from __future__ import annotations

import pytest

from emotion.evaluate import score


def test_scores_on_known_predictions():
    # angry: 2 right, 1 called happy; happy: 3 right; sad: 1 right, 1 called happy.
    y_true = [0, 0, 0, 3, 3, 3, 4, 4]
    y_pred = [0, 0, 3, 3, 3, 3, 4, 3]
    result = score(y_true, y_pred)
    assert result.accuracy == pytest.approx(6 / 8, abs=1e-4)
    assert result.n_images == 8
    happy = result.per_class["happy"]
    assert happy.precision == pytest.approx(3 / 5, abs=1e-4)
    assert happy.recall == 1.0
    assert happy.f1 == pytest.approx(0.75, abs=1e-4)
    assert result.per_class["angry"].recall == pytest.approx(2 / 3, abs=1e-4)
    assert result.per_class["angry"].f1 == pytest.approx(0.8, abs=1e-4)
    assert result.per_class["sad"].f1 == pytest.approx(2 / 3, abs=1e-4)
    # Macro-F1 is over the three classes that occur, as scikit-learn computes it.
    assert result.macro_f1 == pytest.approx((0.8 + 0.75 + 2 / 3) / 3, abs=1e-4)
    cm = result.confusion_matrix
    assert cm[0][0] == 2 and cm[0][3] == 1 and cm[4][3] == 1 and cm[3][3] == 3
    assert result.confusion_normalised[0][3] == pytest.approx(1 / 3, abs=1e-4)


def test_scores_match_scikit_learn():
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 7, 500)
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.integers(0, 7, 500))
    result = score(y_true, y_pred)
    assert result.accuracy == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-4)
    assert result.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro"), abs=1e-4)


# ---------------------------------------------------------------- models and data to refuse

MODEL_MESSAGES = {
    "two_outputs.keras": "the model gives 2 outputs per face, not 7 (one per emotion)",
    "ten_outputs.keras": "the model gives 10 outputs per face, not 7 (one per emotion)",
    "wrong_input.keras": "the model takes input of shape (None, 64, 64, 3), not (None, 48, 48, 1)",
    "not_softmax.keras": "the model's outputs are not probabilities",
    "truncated.keras": "is not a readable Keras model (damaged or incomplete file)",
}


@pytest.mark.parametrize("name", list(MODEL_MESSAGES))
def test_a_model_of_the_wrong_shape_is_refused_at_load_in_one_line(hostile_models, name):
    from emotion.model import ModelError, load_model

    with pytest.raises(ModelError) as err:
        load_model(hostile_models[name])
    text = str(err.value)
    assert MODEL_MESSAGES[name] in text and str(hostile_models[name]) in text
    assert "\n" not in text and "\x1b" not in text  # no Keras dump, no terminal colours


def test_the_tiny_control_model_loads(hostile_models):
    from emotion.model import load_model

    assert load_model(hostile_models["tiny.keras"]).output_shape == (None, 7)


@pytest.mark.parametrize("name", ["two_outputs.keras", "wrong_input.keras", "truncated.keras"])
def test_the_recognizer_refuses_them_through_either_runtime(hostile_models, tmp_path, name):
    import shutil

    from emotion.model import ModelError
    from emotion.recognizer import EmotionRecognizer

    path = tmp_path / name  # a copy: the ONNX conversion would be cached beside it
    shutil.copy(hostile_models[name], path)
    for runtime in ("auto", "keras"):
        with pytest.raises(ModelError, match=MODEL_MESSAGES[name].replace("(", r"\(")
                           .replace(")", r"\)")):
            EmotionRecognizer(path, runtime=runtime)


def test_a_bad_model_cached_as_onnx_before_the_check_is_still_refused(hostile_models, tmp_path,
                                                                      monkeypatch):
    import shutil

    pytest.importorskip("onnxruntime")
    from emotion import model as model_module
    from emotion import runtime
    from emotion.model import ModelError
    from emotion.recognizer import EmotionRecognizer

    path = tmp_path / "old.keras"
    shutil.copy(hostile_models["two_outputs.keras"], path)
    with monkeypatch.context() as m:
        m.setattr(model_module, "check_model", lambda model, where: None)  # as before the check
        runtime.load_classifier(path, runtime="onnxruntime")  # its ONNX copy, as then made
    assert path.with_suffix(".onnx").is_file()
    assert runtime.load_classifier(path, runtime="onnxruntime").num_classes == 2
    with pytest.raises(ModelError, match="the model gives 2 outputs per face, not 7"):
        EmotionRecognizer(path)


@pytest.mark.parametrize("name", ["two_outputs.keras", "ten_outputs.keras", "wrong_input.keras",
                                  "truncated.keras"])
def test_evaluate_command_refuses_a_bad_model_in_one_line(hostile, hostile_models, name, capsys):
    from emotion.__main__ import main

    data = hostile["single_class.csv"]
    assert main(["evaluate", "--data", str(data), "--model", str(hostile_models[name])]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no accuracy printed for a model that cannot be scored
    assert captured.err.count("\n") == 1 and MODEL_MESSAGES[name] in captured.err


def test_evaluate_command_refuses_data_without_faces(hostile, hostile_models, capsys):
    from emotion.__main__ import main

    model = str(hostile_models["tiny.keras"])
    for name, words in [("header_only.csv", "no rows"),
                        ("unreadable_images", "none of its 8 image files could be read")]:
        assert main(["evaluate", "--data", str(hostile[name]), "--model", model]) == 2
        err = capsys.readouterr().err
        assert "StopIteration" not in err and f"error: {hostile[name]}" in err and words in err


def test_evaluate_picks_a_split_with_faces_or_says_there_is_none(hostile):
    import numpy as np

    from emotion.data import DataError, Dataset, LoadReport, Split, load
    from emotion.evaluate import choose_split

    assert choose_split(load(hostile["single_class.csv"]))[0] == "train"
    no_faces = Split(np.zeros((0, 48, 48), np.uint8), np.zeros(0, np.int64))
    empty = Dataset({"test": no_faces}, LoadReport(source="made-up"))
    with pytest.raises(DataError, match="made-up: no faces to evaluate on"):
        choose_split(empty)


def test_evaluation_says_how_the_uncertain_faces_fare():
    import numpy as np

    from emotion.config import UNCERTAIN_BELOW
    from emotion.evaluate import score

    probs = np.array([[0.05] * 7, [0.05] * 7, [0.65 / 6] * 7, [0.7 / 6] * 7])
    probs[0, 3], probs[1, 3] = 0.70, 0.70  # sure: happy, right once
    probs[2, 4], probs[3, 4] = 0.35, 0.30  # unsure: sad, right once
    labels = np.array([3, 6, 4, 0])
    unsure = score(labels, probs.argmax(axis=1), probs=probs).uncertain
    assert unsure.below == UNCERTAIN_BELOW and unsure.share == 0.5
    assert unsure.accuracy == 0.5 and unsure.accuracy_rest == 0.5
    assert score(labels, probs.argmax(axis=1)).uncertain is None  # labels alone: not known


def test_evaluate_split_option_names_the_faces_or_says_what_is_missing(hostile):
    from emotion.data import DataError, load
    from emotion.evaluate import choose_split

    dataset = load(hostile["single_class.csv"])  # training rows only
    with pytest.raises(DataError, match="no test faces .*give --split val"):
        choose_split(dataset, "test")
    with pytest.raises(DataError, match="a model needs faces of at least two emotions"):
        choose_split(dataset, "val")  # held out as training would, so checked as training is


def test_scores_are_refused_for_outputs_that_are_not_seven_classes(hostile_models):
    import keras
    import numpy as np

    from emotion.evaluate import evaluate_model

    # Loaded past load_model's check, as a model built in code would be.
    model = keras.models.load_model(hostile_models["two_outputs.keras"], compile=False)
    faces = np.zeros((3, 48, 48), np.uint8)
    with pytest.raises(ValueError, match=r"outputs of shape \(3, 2\) for 3 faces, not \(3, 7\)"):
        evaluate_model(model, faces, np.array([0, 3, 6]))
