"""Hostile images: headers claiming huge pictures, huge files, folders given as images."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import png_claiming

from emotion.images import ImageError, decode_image, read_image


def test_a_header_claiming_a_huge_picture_is_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(100_000, 100_000))
    assert bomb.stat().st_size < 100
    with pytest.raises(ImageError, match=r"bomb.png: the picture is over 179 megapixels, over the"):
        read_image(bomb)
    with pytest.raises(ImageError, match="10000x10000 pixels, over the 50-megapixel limit"):
        decode_image(png_claiming(10_000, 10_000), "upload.png")


def test_the_pixel_limit_can_be_raised_and_normal_photos_pass(tmp_path, monkeypatch, astronaut_bgr):
    ok, png = cv2.imencode(".png", astronaut_bgr)
    assert decode_image(png.tobytes(), "astronaut.png").shape == astronaut_bgr.shape
    monkeypatch.setenv("EMOTION_MAX_PIXELS", str(200_000))  # the astronaut is 262,144 pixels
    with pytest.raises(ImageError, match="over the 0.2-megapixel limit"):
        decode_image(png.tobytes(), "astronaut.png")


def test_files_over_the_size_limit_and_folders_are_refused(tmp_path, monkeypatch):
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff" * (2 * 1024 * 1024))
    monkeypatch.setenv("EMOTION_MAX_IMAGE_MB", "1")
    with pytest.raises(ImageError, match=r"big.jpg: 2 MB is over the 1 MB limit"):
        read_image(big)
    with pytest.raises(ImageError, match="is a folder"):
        read_image(tmp_path)


def test_predict_refuses_a_bomb_in_one_line(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(100_000, 100_000))
    done = subprocess.run([sys.executable, "-m", "emotion", "predict", str(bomb)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "megapixel" in done.stderr


def test_a_dataset_folder_with_a_bomb_skips_it_and_names_it(tmp_path, capsys):
    from emotion.data import load_folder

    for cls in ("happy", "sad"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(tmp_path / "train" / cls / f"{i}.png"),
                        np.full((48, 48), 40 * i + 50, np.uint8))
    (tmp_path / "train" / "happy" / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    dataset = load_folder(tmp_path, cache=False)
    assert len(dataset.splits["train"].labels) == 6
    assert any(p.endswith("bomb.png") for p in dataset.report.unreadable)
    assert "bomb.png: the picture is over 179 megapixels" in capsys.readouterr().err


# ---------------------------------------------------------------- the hostile corpus (tests/hostile.py)


def test_a_symlink_loop_a_folder_and_a_pipe_are_named_for_what_they_are(hostile):
    with pytest.raises(ImageError, match=r"loop.jpg is a symlink loop .*: give an image file"):
        read_image(hostile["loop.jpg"])
    with pytest.raises(ImageError, match=r"a_folder.jpg is a folder: give an image file"):
        read_image(hostile["a_folder.jpg"])
    # Reading a named pipe would wait for a writer forever.
    with pytest.raises(ImageError, match=r"fifo.jpg is not a regular file"):
        read_image(hostile["fifo.jpg"])
    with pytest.raises(ImageError, match=r"nothing.jpg: no such file"):
        read_image(hostile["loop.jpg"].parent / "nothing.jpg")


@pytest.mark.parametrize("name", ["text.jpg", "truncated.jpg"])
def test_text_and_truncated_jpegs_are_not_readable_images(hostile, name):
    with pytest.raises(ImageError, match=f"{name}: not a readable image"):
        read_image(hostile[name])


def test_an_unreadable_image_says_permission_denied(hostile, tmp_path, monkeypatch):
    from hostile import deny_reading

    photo = tmp_path / "private.jpg"
    photo.write_bytes(hostile["truncated.jpg"].read_bytes())
    deny_reading(monkeypatch, photo)  # mode 000; as root, open() refuses it as it would others
    with pytest.raises(ImageError, match=r"^cannot read .*private.jpg: permission denied"):
        read_image(photo)


def test_predict_on_an_unreadable_image_prints_one_line(hostile, tmp_path, monkeypatch, capsys):
    from hostile import deny_reading

    from emotion.__main__ import main

    photo = tmp_path / "private.jpg"
    photo.write_bytes(hostile["truncated.jpg"].read_bytes())
    deny_reading(monkeypatch, photo)
    assert main(["predict", str(photo)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"error: cannot read {photo}: permission denied" in err


def test_a_2_gib_file_is_refused_from_its_size_alone(tmp_path):
    # Sparse: 2 GiB long, no disk blocks. Nothing of it is read, so this takes no memory.
    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as f:
        f.truncate(2 * 1024**3)
    done = subprocess.run([sys.executable, "-m", "emotion", "predict", str(huge)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert "huge.jpg: 2048 MB is over the 100 MB limit for an image" in done.stderr


def test_image_bytes_over_the_size_limit_are_refused_before_decoding(monkeypatch):
    # The Photo page's path: an upload arrives as bytes, never as a file to stat.
    monkeypatch.setenv("EMOTION_MAX_IMAGE_MB", "1")
    with pytest.raises(ImageError, match=r"upload.jpg: 2 MB is over the 1 MB limit"):
        decode_image(b"\xff" * (2 * 1024 * 1024), "upload.jpg")
