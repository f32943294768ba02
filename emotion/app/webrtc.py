"""The streamlit-webrtc adapter of the Webcam page: ICE configuration (none by default, STUN/TURN
servers only when configured), the frames callback around a LiveProcessor, and the stats file
the browser test reads."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import write_text_atomic

if TYPE_CHECKING:
    from ..live import LiveProcessor

ICE_ENV = "EMOTION_ICE_SERVERS"
SECRET_KEY = "ice_servers"


class IceConfigError(ValueError):
    """ICE servers given in a shape WebRTC cannot use."""


def _plain(value: Any) -> Any:
    """Streamlit's secrets (AttrDict, tuples) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def parse_ice_servers(value: Any, origin: str) -> list[dict]:
    """RTCIceServer dicts from JSON text, a list or {"iceServers": [...]}; IceConfigError otherwise."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise IceConfigError(
                f"{origin} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno});"
                ' expected e.g. [{"urls": ["stun:stun.example.org:3478"]}]'
            ) from None
    value = _plain(value)
    if isinstance(value, dict) and "iceServers" in value:
        value = value["iceServers"]
    if not isinstance(value, list):
        raise IceConfigError(f"{origin} must be a list of ICE servers, got {type(value).__name__}")
    for i, server in enumerate(value):
        urls = server.get("urls") if isinstance(server, dict) else None
        if not (isinstance(urls, str)
                or (isinstance(urls, list) and urls and all(isinstance(u, str) for u in urls))):
            raise IceConfigError(f'{origin}: server {i} needs "urls", a string or a list of strings')
        for key in ("username", "credential"):
            if key in server and not isinstance(server[key], str):
                raise IceConfigError(f"{origin}: server {i} {key!r} must be a string")
    return value


def rtc_configuration(environ: Mapping[str, str] | None = None, secrets: Any = None) -> dict:
    """The RTCConfiguration: EMOTION_ICE_SERVERS, else secrets["ice_servers"], else no servers at all.

    With no servers the browser and the server pair over their host addresses, which works when
    both are on one machine or one network; say so explicitly, because streamlit-webrtc otherwise
    fills in public STUN servers (a network call this app does not need to make).
    """
    environ = os.environ if environ is None else environ
    if environ.get(ICE_ENV, "").strip():
        return {"iceServers": parse_ice_servers(environ[ICE_ENV], f"${ICE_ENV}")}
    if secrets is not None:
        try:
            value = secrets[SECRET_KEY] if SECRET_KEY in secrets else None
        except (FileNotFoundError, KeyError):
            value = None
        if value is not None:
            return {"iceServers": parse_ice_servers(value, f'secrets["{SECRET_KEY}"]')}
    return {"iceServers": []}


def streamlit_rtc_configuration() -> dict:
    """rtc_configuration() with the app's st.secrets, which may not exist at all."""
    import streamlit as st

    try:
        secrets = st.secrets if SECRET_KEY in st.secrets else None
    except Exception:  # no secrets.toml anywhere: Streamlit raises its own FileNotFoundError type
        secrets = None
    return rtc_configuration(secrets=secrets)


# Only the browser test sets this: the page then writes the session's counters to that JSON file.
STATS_ENV = "EMOTION_LIVE_STATS"


class StatsFile:
    """A processor's counters (LiveStats) as JSON in a file, rewritten at most every `every_s`
    seconds: for a test watching the server from outside, not a log."""

    def __init__(self, path: str | Path, every_s: float = 0.5, clock=time.monotonic):
        self.path = Path(path)
        self.every_s = every_s
        self.clock = clock
        self._written = -1.0

    def update(self, processor: LiveProcessor) -> None:
        now = self.clock()
        if self._written >= 0 and now - self._written < self.every_s:
            return
        self._written = now
        write_text_atomic(self.path, json.dumps(processor.stats().__dict__))


def stats_file_from_env(environ: Mapping[str, str] | None = None) -> StatsFile | None:
    """The stats file $EMOTION_LIVE_STATS names, when a test asked for one."""
    value = (os.environ if environ is None else environ).get(STATS_ENV)
    return StatsFile(value) if value else None


def frames_callback(processor: LiveProcessor, stats: StatsFile | None = None):
    """A streamlit-webrtc `queued_video_frames_callback` that annotates only the newest frame.

    streamlit-webrtc hands over every frame that arrived while the previous call ran; processing
    only the newest and dropping the rest keeps latency at one frame however slow the model is,
    and nothing piles up. `stats`, if given, is updated after each frame.
    """
    import av

    async def on_frames(frames: list) -> list:
        if not frames:
            return []
        latest = frames[-1]
        result = processor.process(latest.to_ndarray(format="bgr24"))
        if stats is not None:
            stats.update(processor)
        out = av.VideoFrame.from_ndarray(result.frame, format="bgr24")
        out.pts = latest.pts
        if latest.time_base is not None:
            out.time_base = latest.time_base
        return [out]

    return on_frames
