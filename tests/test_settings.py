"""Settings from the environment: read in config.py only, at call time, every variable in the
README's table; on/off switches in their usual spellings (anything else said at start), and the
administrator token that guards training on a shared server."""

from __future__ import annotations

import ast
import json
import re
import threading
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from emotion import config
from emotion.app import jobs
from emotion.config import PROJECT_ROOT

TRAINING = str(PROJECT_ROOT / "app_pages" / "3_Training.py")
PACKAGE = PROJECT_ROOT / "emotion"


def _environment_reads(path: Path) -> list[str]:
    """`file:line` for each read of the environment in a module: os.environ (other than a
    setdefault, which writes), os.getenv, os.environb, `from os import environ/getenv`."""
    tree = ast.parse(path.read_text(), str(path))
    writes = {id(node.func.value) for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "setdefault"}
    found = []
    for node in ast.walk(tree):
        read = (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id == "os" and node.attr in ("environ", "environb", "getenv")
                and id(node) not in writes)
        read |= isinstance(node, ast.ImportFrom) and node.module == "os" and any(
            alias.name in ("environ", "environb", "getenv") for alias in node.names)
        if read:
            found.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    return found


def test_only_config_reads_the_environment():
    modules = [p for p in sorted(PACKAGE.rglob("*.py")) if p != PACKAGE / "config.py"]
    modules += [PROJECT_ROOT / "app.py", *sorted((PROJECT_ROOT / "app_pages").glob("*.py"))]
    assert len(modules) > 30
    assert [read for path in modules for read in _environment_reads(path)] == []
    assert _environment_reads(PACKAGE / "config.py")  # the scan does see a read


def test_the_readme_lists_every_variable_config_reads():
    names = set(re.findall(r'"(EMOTION_[A-Z_]+)"', (PACKAGE / "config.py").read_text()))
    readme = (PROJECT_ROOT / "README.md").read_text()
    table = readme[readme.index("\n## Settings\n"):]
    table = table[:table.index("\n## ", 1)]
    listed = re.findall(r"^\| `(EMOTION_[A-Z_]+)` \|", table, re.MULTILINE)
    assert len(listed) == len(set(listed)) and set(listed) == names and len(names) >= 15
    # ... and no module names a variable config.py does not read.
    used = {name for path in PACKAGE.rglob("*.py")
            for name in re.findall(r"\bEMOTION_[A-Z_]+\b", path.read_text())}
    assert used <= names


def test_a_variable_set_after_import_takes_effect(tmp_path, monkeypatch):
    """Every module is imported by now (this file imports the app's jobs); each setting is read
    when it is used, so what a server's start-up or a test sets later counts."""
    from emotion import cli, data, images, model, registry, runtime, speech, videos
    from emotion.app import webrtc
    from emotion.training import timing

    elsewhere = tmp_path / "elsewhere.keras"
    monkeypatch.setenv(config.MODEL_ENV, str(elsewhere))
    assert registry.app_model_path() == elsewhere
    assert cli.build_parser().parse_args(["evaluate", "--data", "x"]).model == str(elsewhere)

    monkeypatch.setenv(config.CACHE_DIR_ENV, str(tmp_path / "cache"))
    assert runtime.cache_candidates(elsewhere)[1].parent == tmp_path / "cache" / "runtime"
    assert timing._cache_path(None).parent == tmp_path / "cache"
    faces = tmp_path / "faces" / "happy"
    faces.mkdir(parents=True)
    import cv2
    import numpy as np

    cv2.imwrite(str(faces / "a.png"), np.full((48, 48), 128, np.uint8))
    data.load_folder(tmp_path / "faces")
    assert list((tmp_path / "cache").glob("*.npz"))

    monkeypatch.setenv(config.RUNS_DIR_ENV, str(tmp_path / "runs"))
    assert jobs.JobManager()._new_run_dir().parent == tmp_path / "runs"

    monkeypatch.setenv(config.RUNTIME_ENV, "tf")
    assert runtime.resolve_runtime() == runtime.KERAS
    monkeypatch.setenv(config.THREADS_ENV, "3")
    assert config.app_threads() == 3

    monkeypatch.setenv(config.TTS_OFFLINE_ENV, "1")
    assert speech.ClipSource().online is False
    monkeypatch.setenv(config.ICE_SERVERS_ENV, json.dumps([{"urls": "stun:example.org:3478"}]))
    assert webrtc.rtc_configuration() == {"iceServers": [{"urls": "stun:example.org:3478"}]}
    monkeypatch.setenv(config.LIVE_STATS_ENV, str(tmp_path / "stats.json"))
    assert webrtc.stats_file_from_env().path == tmp_path / "stats.json"

    png = cv2.imencode(".png", np.zeros((100, 100, 3), np.uint8))[1].tobytes()
    monkeypatch.setenv(config.MAX_PIXELS_ENV, "5000")
    with pytest.raises(images.ImageError, match=config.MAX_PIXELS_ENV):
        images.decode_image(png, "small.png")
    monkeypatch.setenv(config.MAX_IMAGE_MB_ENV, "7")
    assert config.max_image_bytes() == 7 * 1024 * 1024
    monkeypatch.setenv(config.MAX_VIDEO_PIXELS_ENV, "12")
    assert config.MAX_VIDEO_PIXELS_ENV in videos.frame_size_problem(4, 4, "clip.mp4")

    big = tmp_path / "fer2013.csv"  # 2 MB of a valid header and rows
    big.write_text("emotion,pixels,Usage\n" + ("0," + " ".join(["0"] * 2304) + ",Training\n") * 430)
    monkeypatch.setenv(config.MAX_CSV_MB_ENV, "1")
    with pytest.raises(data.DataError, match=config.MAX_CSV_MB_ENV):
        data.load_csv(big)

    archive = tmp_path / "big.keras"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("model.weights.h5", bytes(2 * 1024 * 1024))
    monkeypatch.setenv(config.MAX_MODEL_MB_ENV, "1")
    with pytest.raises(model.ModelError, match=config.MAX_MODEL_MB_ENV):
        model.check_readable(archive)


@pytest.mark.parametrize("value, expected", [
    ("1", True), ("true", True), ("TRUE", True), ("Yes", True), (" on ", True),
    ("0", False), ("false", False), ("No", False), ("OFF", False), ("", False), (None, False),
])
def test_switches_take_the_usual_spellings_in_any_case(value, expected):
    assert config.parse_switch("EMOTION_X", value) is expected


@pytest.mark.parametrize("value", ["y", "n", "2", "enabled", "tru", "-1"])
def test_a_switch_refuses_anything_else_naming_it(value):
    with pytest.raises(ValueError, match=f"EMOTION_X={value!r} is not understood") as error:
        config.parse_switch("EMOTION_X", value)
    assert "\n" not in str(error.value) and "1/true/yes/on" in str(error.value)


def test_the_command_line_says_a_mistyped_switch_at_start(monkeypatch, capsys):
    from emotion.__main__ import main

    monkeypatch.setenv(config.TTS_OFFLINE_ENV, "y")
    code = main(["audit", "/nowhere"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == (f"error: {config.TTS_OFFLINE_ENV}='y' is not understood: give one "
                                 "of 1/true/yes/on to turn it on or 0/false/no/off to turn it off")


def test_speech_with_a_mistyped_offline_switch_stays_offline(monkeypatch):
    from emotion.speech import ClipSource

    monkeypatch.setenv(config.TTS_OFFLINE_ENV, "y")
    assert ClipSource().online is False
    monkeypatch.setenv(config.TTS_OFFLINE_ENV, "Off")
    assert ClipSource().online is True


@pytest.fixture
def training_page(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs.MANAGER, "runs_dir", tmp_path / "runs")
    monkeypatch.setenv("EMOTION_MODEL", str(tmp_path / "models" / "emotion_cnn.keras"))
    monkeypatch.delenv(config.DISABLE_TRAINING_ENV, raising=False)
    monkeypatch.delenv(config.ADMIN_TOKEN_ENV, raising=False)
    return AppTest.from_file(TRAINING, default_timeout=120)


@pytest.mark.parametrize("value", ["y", "TRUE", "On"])
def test_training_is_off_for_every_spelling_and_for_a_mistyped_one(training_page, monkeypatch,
                                                                   value):
    monkeypatch.setenv(config.DISABLE_TRAINING_ENV, value)
    at = training_page.run()
    assert not at.exception and not at.button
    warning = " ".join(str(w.value) for w in at.warning)
    assert "turned off" in warning
    if value == "y":
        assert "'y' is not understood" in warning


def test_training_without_an_admin_token_is_open_to_all(training_page):
    at = training_page.run()
    assert not at.exception
    assert any(b.key == "start" for b in at.button)
    assert not [t for t in at.text_input if t.key == "admin_token_input"]


def test_the_admin_token_guards_every_training_control(training_page, monkeypatch):
    monkeypatch.setenv(config.ADMIN_TOKEN_ENV, "s3cret-token")
    at = training_page.run()
    assert not at.exception
    assert not at.button and not at.number_input  # nothing that trains, promotes or restores
    box = at.text_input(key="admin_token_input")
    assert box.proto.type == box.proto.PASSWORD  # shown as dots, never echoed

    box.set_value("s3cret-tokem").run()
    assert not at.button
    assert any("not the administrator token" in str(e.value) for e in at.error)

    at.text_input(key="admin_token_input").set_value("s3cret-token").run()
    assert not at.exception and any(b.key == "start" for b in at.button)
    at.run()  # the session stays admitted
    assert any(b.key == "start" for b in at.button)


def test_admin_token_from_the_secrets_and_the_constant_time_check():
    assert config.admin_token({}, secrets={"admin_token": " from-secrets "}) == "from-secrets"
    assert config.admin_token({config.ADMIN_TOKEN_ENV: "env"}, secrets={"admin_token": "x"}) == "env"
    assert config.admin_token({}, secrets=None) is None
    assert config.admin_token({config.ADMIN_TOKEN_ENV: "  "}, secrets={}) is None
    assert config.admin_token_matches("tok", "tok") and not config.admin_token_matches("", "tok")
    assert not config.admin_token_matches(None, "tok") and not config.admin_token_matches("to", "tok")
    assert config.admin_token_matches("pässwort", "pässwort")
    # Many sessions checking at once: each gets its own answer.
    results = [None] * 16

    def check(k):
        results[k] = config.admin_token_matches("tok" if k % 2 else "bad", "tok")

    threads = [threading.Thread(target=check, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [bool(k % 2) for k in range(16)]


def test_the_dataset_page_says_the_same_for_a_path_it_may_not_read_and_a_missing_one(
        tmp_path, monkeypatch):
    """Which server paths exist is none of a visitor's business. (Root reads everything, so a
    folder the server may not read is made so for os.access.)"""
    import os

    private = tmp_path / "private"
    private.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p) == str(private)
                        else real_access(p, mode, **kw))
    messages = []
    for path in (private, tmp_path / "missing"):
        at = AppTest.from_file(str(PROJECT_ROOT / "app_pages" / "4_Dataset.py"), default_timeout=60)
        at.session_state["dataset_path"] = str(path)
        at.run()
        assert not at.exception
        messages.append([str(e.value).replace(str(path), "PATH") for e in at.error])
    assert messages[0] == messages[1] and "no such file or folder" in messages[0][0]
