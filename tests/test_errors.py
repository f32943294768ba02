"""One error hierarchy (`EmotionError`) and one sentence for every error a user can cause."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import emotion
from emotion import errors
from emotion.errors import EmotionError, sentence

# Not a mistake of the user's: the signal a cancelled training run stops with.
NOT_ERRORS = {"emotion.training.callbacks.TrainingCancelled"}


def _package_exceptions() -> list[type]:
    """Every exception class defined in a module of the package (warnings left out)."""
    found = []
    for module_info in pkgutil.walk_packages(emotion.__path__, "emotion."):
        if module_info.name == "emotion.__main__":
            continue
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (cls.__module__ == module.__name__ and issubclass(cls, BaseException)
                    and not issubclass(cls, Warning)):
                found.append(cls)
    return found


def test_every_error_the_package_defines_is_an_emotion_error():
    classes = {f"{c.__module__}.{c.__qualname__}": c for c in _package_exceptions()}
    assert {"emotion.errors.DataError", "emotion.errors.ModelError", "emotion.errors.JobError",
            "emotion.training.callbacks.TrainingCancelled"} <= set(classes)  # the walk found them
    stray = sorted(name for name, cls in classes.items()
                   if not issubclass(cls, EmotionError) and name not in NOT_ERRORS)
    assert stray == []


@pytest.mark.parametrize("cls, builtin", [
    (errors.DataError, ValueError), (errors.ImageError, ValueError),
    (errors.ModelError, ValueError), (errors.TrainError, ValueError),
    (errors.StateError, ValueError), (errors.OutputError, ValueError),
    (errors.UploadError, ValueError), (errors.UserError, ValueError),
    (errors.IceConfigError, ValueError), (errors.UnsupportedModel, ValueError),
    (errors.SettingError, ValueError), (errors.VideoError, ValueError),
    (errors.JobError, RuntimeError), (errors.PromotionError, RuntimeError),
    (errors.UnavailableRuntime, RuntimeError), (errors.ModelNotFound, FileNotFoundError),
    (errors.NotAFile, OSError)])
def test_each_error_is_still_the_builtin_its_callers_catch(cls, builtin):
    assert issubclass(cls, EmotionError) and issubclass(cls, builtin)


def test_the_old_names_still_import():
    from emotion.app.jobs import JobError
    from emotion.data import DataError
    from emotion.images import ImageError
    from emotion.model import ModelError
    from emotion.registry import PromotionError
    from emotion.training import TrainError

    for cls in (JobError, DataError, ImageError, ModelError, PromotionError, TrainError):
        assert cls is getattr(errors, cls.__name__)


def test_a_missing_file(tmp_path):
    missing = tmp_path / "nothing.jpg"
    with pytest.raises(FileNotFoundError) as caught:
        missing.read_bytes()
    assert sentence(caught.value) == f"{missing}: no such file or directory"
    assert sentence(caught.value, "an image file") == f"{missing}: no such file"


def test_a_folder_given_as_a_file(tmp_path):
    from emotion.images import ImageError, read_image

    with pytest.raises(IsADirectoryError) as caught:
        tmp_path.read_bytes()
    assert sentence(caught.value, "an image file") == f"{tmp_path} is a folder: give an image file"
    assert sentence(caught.value) == f"{tmp_path}: is a directory"
    with pytest.raises(ImageError) as refused:
        read_image(tmp_path)
    assert sentence(refused.value) == f"{tmp_path} is a folder: give an image file"


def test_a_file_it_may_not_read(tmp_path, monkeypatch):
    from hostile import deny_reading

    private = tmp_path / "private.csv"
    private.write_text("emotion,pixels\n")
    deny_reading(monkeypatch, private)  # mode 000; as root, open() refuses it as it would others
    with pytest.raises(PermissionError) as caught:
        private.read_bytes()
    hint = "permission denied (check its permissions and its folder's)"
    assert sentence(caught.value, "a fer2013.csv") == f"cannot read {private}: {hint}"
    assert sentence(caught.value) == f"{private}: {hint}"
    from emotion.data import DataError, load_csv

    with pytest.raises(DataError) as refused:
        load_csv(private)
    assert sentence(refused.value) == f"cannot read {private}: {hint}"


def test_an_unreadable_image(tmp_path):
    from emotion.images import ImageError, read_image

    fake = tmp_path / "fake.png"
    fake.write_bytes(b"not an image at all")
    with pytest.raises(ImageError) as caught:
        read_image(fake)
    assert sentence(caught.value) == (
        f"{fake}: not a readable image (expected jpg, png, webp or bmp)")


def test_a_bad_model_file(tmp_path):
    from emotion.model import ModelError, load_model

    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a keras file")
    with pytest.raises(ModelError) as caught:
        load_model(bad)
    assert sentence(caught.value) == (f"{bad} is not a readable Keras model (damaged or "
                                      "incomplete file); copy it again or train a new one")
    with pytest.raises(FileNotFoundError) as missing:
        load_model(tmp_path / "none.keras")
    assert isinstance(missing.value, EmotionError)
    assert sentence(missing.value).startswith(f"no model at {tmp_path / 'none.keras'}: train one")


def test_a_file_that_could_not_be_written(tmp_path):
    written = tmp_path / "runs" / "r1" / "emotion_cnn.keras"
    full = OSError(28, "No space left on device", str(written))
    assert sentence(full, failed="the run could not write its files",
                    folder=tmp_path / "runs") == (
        f"{written}: no space left on device: the run could not write its files; check the "
        f"free space and permissions of {tmp_path / 'runs'}, then try again")
    # Written under a temporary name: the sentence names the file the user gave.
    assert sentence(full, path="out.mp4", failed="could not be written") == (
        "out.mp4: could not be written (No space left on device): check the folder's free "
        "space and permissions")


def test_a_library_message_becomes_one_plain_line():
    keras_text = ("Exception encountered when calling Sequential.call().\n\n\x1b[1mInput 0 of "
                  "layer 'dense' is incompatible\x1b[0m\n\nArguments received:\n  • training=False")
    assert sentence(ValueError(keras_text)) == "Input 0 of layer 'dense' is incompatible"
    long = sentence(ValueError("a\nb\n" + "c" * 300))
    assert long.startswith("a b c") and long.endswith("c...")
    assert len(sentence(ValueError("c" * 300))) == 203


def test_a_missing_module_is_named():
    try:
        import no_such_module_here  # noqa: F401
    except ImportError as exc:
        said = sentence(exc)
    assert said.startswith("no_such_module_here is not installed")
