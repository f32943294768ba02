"""The loaders: fer2013.csv (the real sample and broken copies) and made-up image folders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from emotion import data
from emotion.data import DataError


def test_sample_csv_loads_with_the_usual_splits(fer_sample_csv):
    dataset = data.load(fer_sample_csv)
    assert len(dataset["train"]) == 350  # 50 per class, Training
    assert len(dataset["val"]) == 70  # 10 per class, PublicTest
    assert dataset["train"].images.shape[1:] == (48, 48)
    assert dataset["train"].images.dtype == np.uint8
    assert set(dataset["train"].counts().values()) == {50}


def _csv(tmp_path: Path, rows: list[str], header: str = "emotion,pixels,Usage") -> Path:
    path = tmp_path / "fer2013.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _row(label="3", n=48 * 48, value="7", usage="Training") -> str:
    return f"{label},{' '.join([value] * n)},{usage}"


def test_csv_splits_follow_usage(tmp_path):
    path = _csv(tmp_path, [_row("0"), _row("1", usage="PublicTest"), _row("6", usage="PrivateTest")])
    dataset = data.load_csv(path)
    assert {k: len(v) for k, v in dataset.splits.items()} == {"train": 1, "val": 1, "test": 1}
    assert dataset["test"].labels.tolist() == [6]


@pytest.mark.parametrize(
    "bad_row, message",
    [
        (_row(n=100), "row 3: 100 pixel values, expected 2304"),
        (_row(value="x"), "row 3: pixels contain a value that is not a whole number"),
        (_row(label="9"), "row 3: emotion 9 is outside 0..6"),
        (_row(label="happy"), "row 3: emotion 'happy' is not a label id"),
        (_row(value="300"), "row 3: a pixel value is outside 0..255"),
        (_row(usage="Later"), "row 3: Usage 'Later' is not one of"),
    ],
)
def test_a_bad_csv_row_is_named(tmp_path, bad_row, message):
    path = _csv(tmp_path, [_row(), bad_row, _row()])
    with pytest.raises(DataError) as err:
        data.load_csv(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_a_missing_column_is_named(tmp_path):
    path = _csv(tmp_path, ["3,Training"], header="emotion,Usage")
    with pytest.raises(DataError, match="missing column.*pixels"):
        data.load_csv(path)


@pytest.mark.slow
def test_a_full_size_csv_loads_whole(tmp_path):
    """35,887 rows, the size of the real fer2013.csv: every row, label and pixel arrives.
    (How long it takes is measured by scripts/benchmark.py, not asserted here.)"""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(64, 48 * 48))
    rows = [" ".join(map(str, r)) for r in pixels]
    lines = ["emotion,pixels,Usage"] + [f"{i % 7},{rows[i % 64]},Training" for i in range(35887)]
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines))
    train = data.load_csv(path)["train"]
    assert len(train) == 35887
    assert np.array_equal(train.labels, np.arange(35887) % 7)
    assert np.array_equal(train.images[[0, 65, 35886]].reshape(3, -1), pixels[[0, 1, 35886 % 64]])


def _face(size=48, colour=False, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(size, size, 3) if colour else (size, size), dtype=np.uint8)
    return image


def _folders(root: Path) -> Path:
    """train/ with aliases in odd case, mixed sizes and colour, one broken file; test/ plain."""
    layout = {
        "train/Happy": [_face(seed=1), _face(96, colour=True, seed=2), _face(seed=3)],
        "train/DISGUSTED": [_face(seed=4), _face(30, seed=5)],
        "train/fearful": [_face(seed=6), _face(seed=7)],
        "test/happy": [_face(seed=8)],
        "test/surprised": [_face(64, colour=True, seed=9)],
    }
    for folder, images in layout.items():
        (root / folder).mkdir(parents=True)
        for i, image in enumerate(images):
            cv2.imwrite(str(root / folder / f"{i}.png"), image)
    (root / "train/Happy/broken.jpg").write_bytes(b"this is not a jpeg")
    return root


def test_folder_loader_handles_aliases_sizes_colour_and_broken_files(tmp_path, capsys):
    root = _folders(tmp_path / "fer")
    dataset = data.load_folder(root, cache=False)
    train, test = dataset["train"], dataset["test"]
    assert train.counts() == {"angry": 0, "disgust": 2, "fear": 2, "happy": 3, "sad": 0,
                              "surprise": 0, "neutral": 0}
    assert test.counts()["surprise"] == 1
    assert train.images.shape == (7, 48, 48)
    assert dataset.report.resized == 3
    assert dataset.report.not_48x48_sizes == {"96x96": 1, "30x30": 1, "64x64": 1}
    assert dataset.report.unreadable == [str(root / "train/Happy/broken.jpg")]
    assert "broken.jpg" in capsys.readouterr().err


def test_a_bare_class_folder_is_a_test_split(tmp_path):
    root = _folders(tmp_path / "fer")
    dataset = data.load(root / "test", cache=False)
    assert list(dataset.splits) == ["test"]
    assert len(dataset["test"]) == 2


def test_a_validation_folder_is_used(tmp_path):
    root = _folders(tmp_path / "fer")
    (root / "test").rename(root / "validation")
    train, val, test = data.training_splits(data.load(root, cache=False))
    assert len(val) == 2 and test is None


def test_an_unknown_class_folder_lists_the_expected_names(tmp_path):
    root = _folders(tmp_path / "fer")
    (root / "train" / "contempt").mkdir()
    with pytest.raises(DataError) as err:
        data.load_folder(root, cache=False)
    assert "contempt" in str(err.value)
    for name in ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"):
        assert name in str(err.value)


def test_missing_paths_and_wrong_files_are_clear(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        data.load(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="expected a fer2013.csv"):
        data.load(tmp_path / "notes.txt")


def test_cache_is_keyed_by_contents(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTION_CACHE_DIR", str(tmp_path / "cache"))
    root = _folders(tmp_path / "fer")
    first = data.load_folder(root)
    again = data.load_folder(root)
    assert not first.report.from_cache and again.report.from_cache
    assert np.array_equal(first["train"].images, again["train"].images)
    assert again.report.resized == first.report.resized
    cv2.imwrite(str(root / "train/Happy/0.png"), _face(seed=99))  # same name, new pixels
    changed = data.load_folder(root)
    assert not changed.report.from_cache


def test_validation_split_is_stratified_and_seeded(fer_sample_csv):
    train = data.load(fer_sample_csv)["train"]
    keep, held = data.split_validation(train, fraction=0.2)
    again_keep, again_held = data.split_validation(train, fraction=0.2)
    assert held.sources == again_held.sources
    assert set(held.counts().values()) == {10}
    assert len(keep) + len(held) == len(train)
    assert not set(keep.sources) & set(held.sources)


def test_kaggle_without_network_says_so(monkeypatch):
    import kagglehub

    def offline(handle):
        raise ConnectionError("network is unreachable")

    monkeypatch.setattr(kagglehub, "dataset_download", offline)
    with pytest.raises(DataError, match="could not download msambare/fer2013.*network"):
        data.load("kaggle")


# ---------------------------------------------------------------- the hostile corpus (tests/hostile.py)


@pytest.mark.parametrize(
    "name, message",
    [
        # Overflows: as integers these were an OverflowError and an unnamed numpy ValueError.
        ("label_overflow.csv", "row 3: emotion 99999999999999999999999 is outside 0..6"),
        ("pixel_overflow.csv", "row 3: a pixel value is outside 0..255 (99999999999)"),
        ("header_only.csv", "no rows, only the header"),
        ("empty.csv", "the file is empty"),
    ],
)
def test_hostile_csvs_are_refused_in_one_line_naming_the_row(hostile, name, message):
    with pytest.raises(DataError) as err:
        data.load(hostile[name])
    text = str(err.value)
    assert str(hostile[name]) in text and message in text and "\n" not in text


def test_a_folder_of_unreadable_images_is_refused_saying_how_many(hostile, capsys):
    with pytest.raises(DataError, match=r"none of its 8 image files could be read, all 8 skipped "
                                        r"\(the first, .*0.png: not a readable image\)"):
        data.load(hostile["unreadable_images"], cache=False)
    assert capsys.readouterr().err.count("warning: skipped") == 8


def test_a_symlink_loop_as_data_says_so(hostile):
    with pytest.raises(DataError, match="loop.jpg is a symlink loop"):
        data.load(hostile["loop.jpg"])


def test_an_unreadable_csv_says_permission_denied(hostile, tmp_path, monkeypatch):
    from hostile import deny_reading

    path = tmp_path / "fer2013.csv"
    path.write_bytes(hostile["one_row.csv"].read_bytes())
    deny_reading(monkeypatch, path)
    with pytest.raises(DataError, match=r"^cannot read .*fer2013.csv: permission denied"):
        data.load(path)


def test_unreadable_images_in_a_folder_are_skipped_and_named(tmp_path, monkeypatch, capsys):
    from hostile import deny_reading

    monkeypatch.setenv("EMOTION_CACHE_DIR", str(tmp_path / "cache"))  # the cache key reads every file
    root = _folders(tmp_path / "fer")
    private = root / "train/Happy/0.png"
    deny_reading(monkeypatch, private)
    dataset = data.load_folder(root)
    assert str(private) in dataset.report.unreadable
    assert f"warning: skipped {private}: permission denied" in capsys.readouterr().err


def test_an_unlistable_folder_is_named(tmp_path, monkeypatch):
    root = _folders(tmp_path / "fer")
    locked = root / "train" / "fearful"
    real_iterdir = Path.iterdir

    def iterdir(self):
        if self == locked:  # what a folder of mode 000 does to anyone but root
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with pytest.raises(DataError, match=r"^cannot read .*fearful: permission denied"):
        data.load(root, cache=False)


def test_the_cache_key_does_not_read_files_over_the_image_limit(tmp_path, monkeypatch, capsys):
    import tracemalloc

    monkeypatch.setenv("EMOTION_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EMOTION_MAX_IMAGE_MB", "1")
    root = _folders(tmp_path / "fer")
    with open(root / "train/Happy/huge.png", "wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: no disk blocks, and it must not be read either
    tracemalloc.start()
    try:
        dataset = data.load_folder(root)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"{peak / 2**20:.0f} MB allocated"
    assert str(root / "train/Happy/huge.png") in dataset.report.unreadable
    assert "huge.png: 64 MB is over the 1 MB limit" in capsys.readouterr().err


def test_a_csv_over_the_size_limit_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTION_MAX_CSV_MB", "1")
    path = _csv(tmp_path, [_row()] * 500)  # about 2.3 MB
    with pytest.raises(DataError, match=r"fer2013.csv: 2 MB is over the 1 MB limit for a CSV"):
        data.load(path)


def test_one_row_is_too_few_to_train_on(hostile):
    dataset = data.load(hostile["one_row.csv"])  # loads: one face is enough to evaluate or audit
    with pytest.raises(DataError, match=f"1 training face; training needs at least "
                                        f"{data.MIN_TRAIN_FACES} faces"):
        data.training_splits(dataset)


def test_faces_of_a_single_emotion_cannot_train_a_model(hostile):
    dataset = data.load(hostile["single_class.csv"])
    assert len(dataset["train"]) == 20
    with pytest.raises(DataError, match="the training faces are all happy; a model needs faces "
                                        "of at least two emotions"):
        data.training_splits(dataset)


def test_train_on_hostile_data_prints_one_line(hostile, capsys):
    from emotion.__main__ import main

    for name, words in [("one_row.csv", "training needs at least"),
                        ("label_overflow.csv", "row 3: emotion")]:
        assert main(["train", "--data", str(hostile[name]), "--out", str(hostile[name].parent /
                                                                        "never")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err
    assert not (hostile["one_row.csv"].parent / "never" / "emotion_cnn.keras").exists()


def test_an_empty_cache_from_an_older_version_is_not_trusted(hostile, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("EMOTION_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "unreadable_images"
    shutil.copytree(hostile["unreadable_images"], root)
    files = data.folders.image_files(root)
    # What an older version cached for this folder: a dataset of no splits at all.
    data.cache.write_cache(data.cache.cache_path(data.cache.content_key(files, root)),
                           data.Dataset({}, data.LoadReport(str(root))))
    with pytest.raises(DataError, match="none of its 8 image files could be read"):
        data.load(root)
