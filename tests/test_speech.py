"""Spoken feedback: real clips (gTTS or the shipped offline ones) and the hold/cooldown/no-overlap policy."""

from __future__ import annotations

import io
import threading
import time
import wave

import pytest

from emotion.labels import EMOTIONS
from emotion.speech import (
    LANGUAGES,
    BrowserSpeaker,
    ClipSource,
    DesktopSpeaker,
    SpeechPolicy,
    cached_path,
    offline_path,
    phrase,
)


class FakeClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize("lang", LANGUAGES)
def test_offline_clips_are_real_small_speech(lang):
    for emotion in EMOTIONS:
        path = offline_path(emotion, lang)
        assert path.is_file(), f"{path} missing: run scripts/make_offline_audio.py"
        with wave.open(str(path)) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
            seconds = w.getnframes() / w.getframerate()
            samples = w.readframes(w.getnframes())
        assert 0.5 < seconds < 4.0
        assert path.stat().st_size < 150_000
        # Not silence: a spoken sentence has plenty of loud samples.
        import numpy as np

        loud = np.abs(np.frombuffer(samples, np.int16)) > 3000
        assert loud.mean() > 0.05


def test_offline_source_yields_wav_bytes(tmp_path):
    source = ClipSource(online=False, audio_dir=tmp_path)
    clip = source.clip("happy", "en")
    assert clip.source == "offline" and clip.mime == "audio/wav"
    assert clip.data[:4] == b"RIFF" and clip.data[8:12] == b"WAVE"
    with wave.open(io.BytesIO(clip.data)) as w:
        assert clip.duration_s == pytest.approx(w.getnframes() / w.getframerate())
    clip = source.clip("sad", "fr")
    assert clip.mime == "audio/wav" and clip.data == offline_path("sad", "fr").read_bytes()
    assert not any(tmp_path.iterdir())  # offline never writes to the gTTS cache


def test_online_source_falls_back_fast_and_remembers(tmp_path):
    """gTTS first; without internet (as here) the offline clip, quickly, and no retry per utterance."""
    source = ClipSource(online=True, timeout_s=2.0, audio_dir=tmp_path)
    started = time.monotonic()
    clip = source.clip("surprise", "de")
    first = time.monotonic() - started
    assert first < 15
    if clip.source == "gtts":  # a machine with internet: a real MP3, cached for next time
        assert clip.mime == "audio/mpeg" and cached_path("surprise", "de", tmp_path).is_file()
        assert clip.data[:3] == b"ID3" or clip.data[0] == 0xFF
        return
    assert clip.mime == "audio/wav" and clip.data[:4] == b"RIFF"
    started = time.monotonic()
    assert source.clip("angry", "de").source == "offline"
    assert time.monotonic() - started < 0.5  # the failure was remembered, no second timeout
    print(f"gTTS unreachable: fell back to offline clips after {first:.2f} s")


def test_unknown_language_or_emotion():
    with pytest.raises(ValueError, match="unknown language"):
        phrase("happy", "xx")
    with pytest.raises(ValueError, match="unknown emotion"):
        phrase("bored", "en")
    assert phrase("happy", "en") == "You look happy"


def test_policy_speaks_only_after_the_emotion_holds():
    clock = FakeClock()
    policy = SpeechPolicy(hold_s=1.0, cooldown_s=4.0, clock=clock)
    assert policy.update("happy") is None  # just appeared
    clock.t += 0.5
    assert policy.update("happy") is None
    clock.t += 0.6
    assert policy.update("happy") == "happy"  # held 1.1 s
    clock.t += 0.5
    assert policy.update("happy") is None  # said already: not again while it stays


def test_policy_ignores_flicker_and_missing_faces():
    clock = FakeClock()
    policy = SpeechPolicy(hold_s=1.0, cooldown_s=0.0, clock=clock)
    for label in ["sad", "happy", "sad", "happy", None, "sad", "happy"]:
        assert policy.update(label) is None
        clock.t += 0.4  # never held a full second
    assert policy.update("happy") is None
    clock.t += 1.0
    assert policy.update("happy") == "happy"


def test_policy_cooldown():
    clock = FakeClock()
    policy = SpeechPolicy(hold_s=1.0, cooldown_s=4.0, clock=clock)
    policy.update("happy")
    clock.t += 1.0
    assert policy.update("happy") == "happy"
    policy.update("sad")
    clock.t += 1.5
    assert policy.update("sad") is None  # held, but 1.5 s after the last utterance
    clock.t += 2.4
    assert policy.update("sad") is None  # 3.9 s
    clock.t += 0.2
    assert policy.update("sad") == "sad"  # 4.1 s: the held change is said now


def test_policy_never_overlaps_itself():
    clock = FakeClock()
    policy = SpeechPolicy(hold_s=0.5, cooldown_s=1.0, clock=clock)
    policy.update("fear")
    clock.t += 0.5
    assert policy.update("fear") == "fear"
    policy.playing_for(3.0)  # a long clip
    policy.update("surprise")
    for _ in range(5):
        clock.t += 0.5
        assert policy.speaking and policy.update("surprise") is None  # cooldown over, clip not
    clock.t += 0.6
    assert not policy.speaking and policy.update("surprise") == "surprise"


def test_browser_speaker_returns_the_clip_to_play():
    clock = FakeClock()
    speaker = BrowserSpeaker(SpeechPolicy(hold_s=1.0, cooldown_s=4.0, clock=clock),
                             ClipSource(online=False))
    assert speaker.update("neutral", "es") is None
    clock.t += 1.0
    clip = speaker.update("neutral", "es")
    assert clip is not None and clip.path == offline_path("neutral", "es")
    assert speaker.last is clip and speaker.policy.speaking


def test_the_page_keeps_the_clip_that_plays_until_another_is_due():
    clock = FakeClock()
    speaker = BrowserSpeaker(SpeechPolicy(hold_s=1.0, cooldown_s=4.0, clock=clock),
                             ClipSource(online=False))
    assert speaker.clip_to_play("happy") is None  # nothing said yet: no audio element
    clock.t += 1.0
    first = speaker.clip_to_play("happy")
    assert first is not None and first.path == offline_path("happy", "en")
    clock.t += 0.5  # the page redraws while it plays: the same clip again, not cut off
    assert speaker.clip_to_play("sad") is first


def test_desktop_speaker_plays_on_a_thread_one_at_a_time():
    clock = FakeClock()
    release, started = threading.Event(), threading.Event()
    played: list[str] = []

    def play(path: str) -> None:  # stands in for the speakers: blocks like playsound(block=True)
        played.append(path)
        started.set()
        release.wait(5)

    speaker = DesktopSpeaker("en", SpeechPolicy(hold_s=1.0, cooldown_s=0.0, clock=clock),
                             ClipSource(online=False), play=play)
    speaker.update("happy")
    clock.t += 1.0
    assert speaker.update("happy") == "happy"
    assert started.wait(5)  # the thread fetched the clip and is playing it
    speaker.policy.playing_for(0.0)  # even if the policy thinks the clip is over...
    speaker.update("sad")
    clock.t += 2.0
    assert speaker.update("sad") is None  # ...nothing starts while the player is still busy
    release.set()
    speaker.wait(5)
    clock.t += 0.1
    assert speaker.update("sad") == "sad"
    speaker.wait(5)
    assert [p.rsplit("/", 1)[-1] for p in played] == ["happy.wav", "sad.wav"]


def test_desktop_speaker_without_audio_output_goes_quiet():
    clock = FakeClock()

    def no_device(path: str) -> None:
        raise RuntimeError("No supported audio backends on this system!")

    speaker = DesktopSpeaker("en", SpeechPolicy(hold_s=0.0, cooldown_s=0.0, clock=clock),
                             ClipSource(online=False), play=no_device)
    assert speaker.update("happy") == "happy"
    speaker.wait(5)
    assert "audio backends" in speaker.disabled_reason
    clock.t += 10
    assert speaker.update("sad") is None
