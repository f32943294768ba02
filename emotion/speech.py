"""Spoken feedback: when to speak (a hold and a cooldown), what clip to play, and playing it."""

from __future__ import annotations

import io
import logging
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import config
from .config import AUDIO_DIR
from .files import write_bytes_atomic
from .labels import EMOTIONS, PHRASES, UNCERTAIN

log = logging.getLogger(__name__)

# The phrase for each emotion in each language we ship offline clips for.
PHRASES_BY_LANG: dict[str, dict[str, str]] = {
    "en": dict(PHRASES),
    "fr": {
        "angry": "Vous avez l'air en colère",
        "disgust": "Vous avez l'air dégoûté",
        "fear": "Vous avez l'air effrayé",
        "happy": "Vous avez l'air heureux",
        "sad": "Vous avez l'air triste",
        "surprise": "Vous avez l'air surpris",
        "neutral": "Vous avez l'air calme",
    },
    "de": {
        "angry": "Du siehst wütend aus",
        "disgust": "Du siehst angewidert aus",
        "fear": "Du siehst ängstlich aus",
        "happy": "Du siehst glücklich aus",
        "sad": "Du siehst traurig aus",
        "surprise": "Du siehst überrascht aus",
        "neutral": "Du siehst ruhig aus",
    },
    "es": {
        "angry": "Pareces enfadado",
        "disgust": "Pareces asqueado",
        "fear": "Pareces asustado",
        "happy": "Pareces feliz",
        "sad": "Pareces triste",
        "surprise": "Pareces sorprendido",
        "neutral": "Pareces tranquilo",
    },
}
LANGUAGES: tuple[str, ...] = tuple(PHRASES_BY_LANG)
# What a person picks from: each language by its name, in English and in itself.
LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "fr": "French (français)",
    "de": "German (Deutsch)",
    "es": "Spanish (español)",
}


def language_name(code: str) -> str:
    """A language's name for a menu ("English" for "en"); the code itself if we have no name."""
    return LANGUAGE_NAMES.get(code, code)
OFFLINE_DIR = AUDIO_DIR / "offline"
# gTTS's service is a network call: give up quickly, and after a failure do not try again for a
# while, so a machine without internet pays the timeout once, not on every utterance.
GTTS_TIMEOUT_S = 2.0
GTTS_RETRY_AFTER_S = 300.0
# gTTS writes 32 kbit/s MP3; the byte count gives the clip's length closely enough for no-overlap.
GTTS_BYTES_PER_S = 32_000 / 8

Clock = Callable[[], float]


def phrase(emotion: str, lang: str = "en") -> str:
    """The sentence spoken for an emotion in a language."""
    if lang not in PHRASES_BY_LANG:
        raise ValueError(f"unknown language {lang!r}: expected one of {', '.join(LANGUAGES)}")
    if emotion not in EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}: expected one of {', '.join(EMOTIONS)}")
    return PHRASES_BY_LANG[lang][emotion]


class SpeechPolicy:
    """When to speak: a new emotion held `hold_s`, not within `cooldown_s` of the last, never over itself."""

    def __init__(self, hold_s: float = 1.0, cooldown_s: float = 4.0, clock: Clock = time.monotonic):
        self.hold_s = hold_s
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._candidate: str | None = None
        self._since = 0.0
        self._announced: str | None = None
        self._last_spoken: float | None = None
        self._busy_until = float("-inf")

    def update(self, emotion: str | None, busy: bool = False) -> str | None:
        """Feed the main face's emotion (None: no face); returns the emotion to announce now, or None.

        "uncertain" is never said: it counts as no emotion at all. `busy` says the player is
        still playing something, whatever the policy estimated.
        """
        if emotion == UNCERTAIN:
            emotion = None
        now = self.clock()
        if emotion != self._candidate:
            self._candidate, self._since = emotion, now
        if emotion is None or emotion == self._announced:
            return None
        if now - self._since < self.hold_s or busy or self.speaking:
            return None
        if self._last_spoken is not None and now - self._last_spoken < self.cooldown_s:
            return None
        self._announced, self._last_spoken = emotion, now
        return emotion

    def playing_for(self, seconds: float) -> None:
        """Tell the policy an utterance has started and lasts `seconds`; nothing new starts before it ends."""
        self._busy_until = self.clock() + seconds

    @property
    def speaking(self) -> bool:
        return self.clock() < self._busy_until


@dataclass(frozen=True)
class Clip:
    """A spoken phrase, ready to play: its file, bytes, MIME type and length."""

    path: Path
    data: bytes
    mime: str
    duration_s: float
    source: str  # "gtts" or "offline"
    text: str = ""  # the phrase it says


def offline_path(emotion: str, lang: str, folder: Path = OFFLINE_DIR) -> Path:
    """The shipped espeak-ng clip (scripts/make_offline_audio.py writes them)."""
    return folder / lang / f"{emotion}.wav"


def cached_path(emotion: str, lang: str, folder: Path = AUDIO_DIR) -> Path:
    """Where gTTS's clip is kept once fetched."""
    return folder / lang / f"{emotion}.mp3"


def wav_duration(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate()


class ClipSource:
    """gTTS clips, cached on disk; the shipped offline clips when gTTS's service cannot be reached."""

    def __init__(self, online: bool | None = None, timeout_s: float = GTTS_TIMEOUT_S,
                 audio_dir: Path = AUDIO_DIR, offline_dir: Path = OFFLINE_DIR):
        # EMOTION_TTS_OFFLINE=1 skips the network entirely (CI, air-gapped machines).
        self.online = (not config.tts_offline()) if online is None else online
        self.timeout_s = timeout_s
        self.audio_dir = audio_dir
        self.offline_dir = offline_dir
        self._failed_at: float | None = None
        self._lock = threading.Lock()

    def clip(self, emotion: str, lang: str = "en") -> Clip:
        """The clip for an emotion; FileNotFoundError when neither gTTS nor an offline clip has it."""
        text = phrase(emotion, lang)
        cached = cached_path(emotion, lang, self.audio_dir)
        if not cached.is_file() and self._may_try_online():
            self._fetch(text, lang, cached)
        if cached.is_file():
            data = cached.read_bytes()
            return Clip(cached, data, "audio/mpeg", len(data) / GTTS_BYTES_PER_S, "gtts", text)
        offline = offline_path(emotion, lang, self.offline_dir)
        if not offline.is_file():
            raise FileNotFoundError(
                f"no clip for {emotion!r} in {lang!r}: gTTS is unreachable and {offline} is missing"
                " (run scripts/make_offline_audio.py)"
            )
        data = offline.read_bytes()
        return Clip(offline, data, "audio/wav", wav_duration(data), "offline", text)

    def _may_try_online(self) -> bool:
        with self._lock:
            if not self.online:
                return False
            return self._failed_at is None or time.monotonic() - self._failed_at > GTTS_RETRY_AFTER_S

    def _fetch(self, text: str, lang: str, dest: Path) -> None:
        """Ask gTTS for the phrase and cache it; on any failure remember it and fall back."""
        try:
            from gtts import gTTS

            buffer = io.BytesIO()
            gTTS(text, lang=lang, lang_check=False, timeout=self.timeout_s).write_to_fp(buffer)
            if not buffer.getvalue():
                raise RuntimeError("gTTS returned no audio")
        except Exception as exc:  # gTTSError, requests' errors, DNS failures: all mean "not now"
            log.info("gTTS unavailable (%s); using the offline clips", exc)
            with self._lock:
                self._failed_at = time.monotonic()
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(dest, buffer.getvalue())


_default_source: ClipSource | None = None


def default_source() -> ClipSource:
    """One ClipSource per process, so a gTTS failure is remembered across callers."""
    global _default_source
    if _default_source is None:
        _default_source = ClipSource()
    return _default_source


class DesktopSpeaker:
    """Speaks through the computer's speakers with playsound3, on a background thread, one at a time."""

    def __init__(self, lang: str = "en", policy: SpeechPolicy | None = None,
                 source: ClipSource | None = None, play: Callable[[str], None] | None = None):
        phrase("neutral", lang)  # an unknown language fails here, not at the first utterance
        self.lang = lang
        self.policy = policy or SpeechPolicy()
        self.source = source or default_source()
        self._play = play or _playsound_blocking
        self._thread: threading.Thread | None = None
        self.disabled_reason: str | None = None

    def update(self, emotion: str | None) -> str | None:
        """Feed the main face's emotion; starts speaking when the policy says so. Returns what it said."""
        if self.disabled_reason:
            return None
        # Never overlap: nothing starts while a clip plays; a change held meanwhile is said after.
        said = self.policy.update(emotion, busy=bool(self._thread and self._thread.is_alive()))
        if said is None:
            return None
        # Fetching (gTTS may wait on the network) and playing both happen off the video loop.
        self._thread = threading.Thread(target=self._run, args=(said,), daemon=True)
        self._thread.start()
        return said

    def _run(self, emotion: str) -> None:
        try:
            clip = self.source.clip(emotion, self.lang)
            self.policy.playing_for(clip.duration_s)
            self._play(str(clip.path))
        except Exception as exc:  # no clip, audio device or backend: say so once, then stay quiet
            self.disabled_reason = str(exc) or type(exc).__name__
            log.warning("speech disabled: %s", self.disabled_reason)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the current utterance ends (used on exit and in tests)."""
        if self._thread:
            self._thread.join(timeout)


def _playsound_blocking(path: str) -> None:
    from playsound3 import playsound

    playsound(path, block=True)


class BrowserSpeaker:
    """Speech for the web page: the policy plus the clip to hand to the browser when it says to speak."""

    def __init__(self, policy: SpeechPolicy | None = None, source: ClipSource | None = None):
        self.policy = policy or SpeechPolicy()
        self.source = source or default_source()
        self.last: Clip | None = None

    def update(self, emotion: str | None, lang: str = "en") -> Clip | None:
        """Feed the main face's emotion; a new clip to play now, or None."""
        said = self.policy.update(emotion)
        if said is None:
            return None
        clip = self.source.clip(said, lang)
        # The browser plays it; the policy counts it as playing for the clip's length.
        self.policy.playing_for(clip.duration_s)
        self.last = clip
        return clip

    def clip_to_play(self, emotion: str | None, lang: str = "en") -> Clip | None:
        """The clip the page's audio element should hold now: a new one when it is time to speak,
        else the last one again, so that a clip still playing is not cut off by a redraw."""
        clip = self.update(emotion, lang)
        return self.last if clip is None else clip
