"""Settings from the environment: on/off switches in their usual spellings (anything else said at
start), and the administrator token that guards training on a shared server."""

from __future__ import annotations

import threading

import pytest
from streamlit.testing.v1 import AppTest

from emotion import config
from emotion.app import jobs
from emotion.config import PROJECT_ROOT

TRAINING = str(PROJECT_ROOT / "app_pages" / "3_Training.py")


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
    monkeypatch.setattr(config, "DEFAULT_MODEL", tmp_path / "models" / "emotion_cnn.keras")
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
