"""Webcam sessions kept on the server under a key in the page's address, so that a browser
refresh (a new Streamlit session) finds its session's timeline and last frame again.

No Streamlit here: the page keeps one LiveSessions in st.cache_resource and the key in its URL.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Generic, TypeVar

from ..follow import CAMERA
from ..live import LiveProcessor
from ..speech import BrowserSpeaker
from .webrtc import FramePathTimes, StatsFile, stats_file_from_env

if TYPE_CHECKING:
    from ..recognizer import EmotionRecognizer

T = TypeVar("T")
KEY_PATTERN = re.compile(r"[0-9a-f]{32}")


def new_key() -> str:
    """A fresh session key: 128 random bits, so nobody finds another person's session by guessing."""
    return secrets.token_hex(16)


def valid_key(key: object) -> bool:
    return isinstance(key, str) and KEY_PATTERN.fullmatch(key) is not None


class LiveSessions(Generic[T]):
    """Sessions by key, thread-safe and bounded: at most `max_sessions`, the least recently used
    dropped first, and none kept longer than `idle_s` after its last use."""

    def __init__(self, max_sessions: int = 16, idle_s: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic):
        self.max_sessions = max_sessions
        self.idle_s = idle_s
        self.clock = clock
        self._items: OrderedDict[str, tuple[T, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        for key in [k for k, (_, used) in self._items.items() if now - used > self.idle_s]:
            del self._items[key]

    def get_or_create(self, key: str, factory: Callable[[], T]) -> T:
        """The session under `key`, made by `factory` if there is none (ValueError for a bad key)."""
        if not valid_key(key):
            raise ValueError(f"not a session key: {key!r}")
        with self._lock:
            now = self.clock()
            self._expire(now)
            if key in self._items:
                item = self._items[key][0]
            else:
                item = factory()
            self._items[key] = (item, now)
            self._items.move_to_end(key)
            while len(self._items) > self.max_sessions:
                self._items.popitem(last=False)
            return item

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


@dataclass
class WebcamSession:
    """What the Webcam page keeps per browser tab: the live processor (built with the recognizer
    the page loaded), the speaker, the frame callback's timings, and the stats file a test asked
    for through $EMOTION_LIVE_STATS (None otherwise)."""

    processor: LiveProcessor
    speaker: BrowserSpeaker
    times: FramePathTimes = field(default_factory=FramePathTimes)
    stats_file: StatsFile | None = None

    @classmethod
    def open(cls, recognizer: EmotionRecognizer) -> WebcamSession:
        """A new session: a camera's live processor with this recognizer, and the stats file
        watching it when a test asked for one."""
        session = cls(LiveProcessor(recognizer, settings=CAMERA), BrowserSpeaker())
        session.stats_file = stats_file_from_env()
        if session.stats_file is not None:
            session.stats_file.watch(session.processor, session.times)
        return session

    def use(self, recognizer: EmotionRecognizer) -> LiveProcessor:
        """The processor for this recognizer: after a model was reloaded on another page, a new
        one built with it (the session's figures then come from one model)."""
        if self.processor.recognizer is not recognizer:
            self.processor = LiveProcessor(recognizer, settings=CAMERA)
            if self.stats_file is not None:
                self.stats_file.watch(self.processor, self.times)
        return self.processor
