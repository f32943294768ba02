"""The streamlit-webrtc adapter of the Webcam page: ICE configuration (none by default, STUN/TURN
servers only when configured), the frames callback around a LiveProcessor, and the stats file
the browser test reads (written by a thread of its own, never by the frame path)."""

from __future__ import annotations

import json
import os
import threading
import time
import weakref
from collections.abc import Mapping, MutableMapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import ICE_SERVERS_ENV, ice_servers, live_stats_path
from ..files import write_text_atomic

if TYPE_CHECKING:
    from ..live import LiveProcessor

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


POLICIES = ("all", "relay")


def _configuration(value: Any, origin: str) -> dict:
    """{"iceServers": [...]} from what parse_ice_servers takes, keeping an "iceTransportPolicy"
    given beside the servers ("relay": the browser sends its media only through a TURN server)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass  # parse_ice_servers says what is wrong with it
    value = _plain(value)
    config = {"iceServers": parse_ice_servers(value, origin)}
    if isinstance(value, dict) and "iceTransportPolicy" in value:
        policy = value["iceTransportPolicy"]
        if policy not in POLICIES:
            raise IceConfigError(f'{origin}: "iceTransportPolicy" must be "all" or "relay",'
                                 f" got {policy!r}")
        config["iceTransportPolicy"] = policy
    return config


def rtc_configuration(environ: Mapping[str, str] | None = None, secrets: Any = None) -> dict:
    """The RTCConfiguration: EMOTION_ICE_SERVERS, else secrets["ice_servers"], else no servers at all.

    Either is a list of servers or {"iceServers": [...], "iceTransportPolicy": "relay"|"all"}.
    With no servers the browser and the server pair over their host addresses, which works when
    both are on one machine or one network; say so explicitly, because streamlit-webrtc otherwise
    fills in public STUN servers (a network call this app does not need to make). The browser
    gets the whole configuration; streamlit-webrtc gives aiortc the servers only.
    """
    if (value := ice_servers(environ)) is not None:
        return _configuration(value, f"${ICE_SERVERS_ENV}")
    if secrets is not None:
        try:
            value = secrets[SECRET_KEY] if SECRET_KEY in secrets else None
        except (FileNotFoundError, KeyError):
            value = None
        if value is not None:
            return _configuration(value, f'secrets["{SECRET_KEY}"]')
    return {"iceServers": []}


def streamlit_rtc_configuration() -> dict:
    """rtc_configuration() with the app's st.secrets, which may not exist at all."""
    import streamlit as st

    try:
        secrets = st.secrets if SECRET_KEY in st.secrets else None
    except Exception:  # no secrets.toml anywhere: Streamlit raises its own FileNotFoundError type
        secrets = None
    return rtc_configuration(secrets=secrets)


@dataclass
class FramePathTimes:
    """Where a session's frame callback spends its time (totals in ms): the conversion from the
    decoded frame, LiveProcessor.process, the conversion back to a video frame."""

    calls: int = 0
    frames_in: int = 0  # frames handed over, the dropped ones included
    to_array_ms: float = 0.0
    process_ms: float = 0.0
    to_frame_ms: float = 0.0


class StatsFile:
    """A processor's counters (LiveStats) as JSON in a file, rewritten at most every `every_s`
    seconds once it has processed a frame: for a test watching the server from outside, not a log."""

    def __init__(self, path: str | Path, every_s: float = 0.5, clock=time.monotonic):
        path = Path(path)
        if path.is_dir():  # several sessions at once: a file each, named when it is made
            path = path / f"session-{time.time_ns()}-{id(self):x}.json"
        self.path = path
        self.every_s = every_s
        self.clock = clock
        self._written = -1.0

    def update(self, processor: LiveProcessor, times: FramePathTimes | None = None) -> None:
        """Write the counters now, unless they were written less than `every_s` ago or no frame
        has been processed yet."""
        now = self.clock()
        if self._written >= 0 and now - self._written < self.every_s:
            return
        stats = processor.stats()
        if not stats.frames:
            return
        self._written = now
        record = dict(stats.__dict__)
        if times is not None:
            record["path"] = asdict(times)
        write_text_atomic(self.path, json.dumps(record))

    def watch(self, processor: LiveProcessor, times: FramePathTimes | None = None) -> threading.Thread:
        """Keep the file up to date from a daemon thread of its own, off the frame path, for as
        long as the processor exists."""
        kept = weakref.ref(processor)

        def run() -> None:
            while (watched := kept()) is not None:
                self.update(watched, times)
                del watched  # hold no reference while sleeping, so the session can go
                # Until the first frame, look often: the file's first write marks that frame's
                # time for scripts/bench_webrtc.py's "Start to first annotated frame".
                time.sleep(self.every_s / 2 if self._written >= 0 else 0.02)

        thread = threading.Thread(target=run, name="emotion-live-stats", daemon=True)
        thread.start()
        return thread


def stats_file_from_env(environ: Mapping[str, str] | None = None) -> StatsFile | None:
    """The stats file $EMOTION_LIVE_STATS names, when a test asked for one."""
    path = live_stats_path(environ)
    return StatsFile(path) if path else None


def frames_callback(processor: LiveProcessor, times: FramePathTimes | None = None):
    """A streamlit-webrtc `queued_video_frames_callback` that annotates only the newest frame.

    streamlit-webrtc hands over every frame that arrived while the previous call ran; processing
    only the newest and dropping the rest keeps latency at one frame however slow the model is,
    and nothing piles up. streamlit-webrtc already runs it in a thread of its own per session
    (with `async_processing=True`), off aiortc's event loop. `times`, if given, adds up the
    callback's own timings (the session keeps it, so it survives the page's reruns).
    """
    import av
    import cv2

    times = FramePathTimes() if times is None else times
    clock = time.perf_counter

    async def on_frames(frames: list) -> list:
        if not frames:
            return []
        latest = frames[-1]
        t0 = clock()
        # The decoder gives I420 and the encoder wants it back: OpenCV converts both ways in a
        # seventh of the time libswscale takes (2.3 ms against 0.3 ms a 640x480 frame), and a
        # frame returned as I420 is not converted again inside the encoder.
        i420 = (latest.format.name == "yuv420p" and latest.width % 2 == 0
                and latest.height % 2 == 0)
        if i420:
            image = cv2.cvtColor(latest.to_ndarray(), cv2.COLOR_YUV2BGR_I420)
        else:
            image = latest.to_ndarray(format="bgr24")
        t1 = clock()
        result = processor.process(image)
        t2 = clock()
        if i420 and result.frame.shape[:2] == image.shape[:2]:
            out = av.VideoFrame.from_ndarray(
                cv2.cvtColor(result.frame, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        else:
            out = av.VideoFrame.from_ndarray(result.frame, format="bgr24")
        t3 = clock()
        out.pts = latest.pts
        if latest.time_base is not None:
            out.time_base = latest.time_base
        times.calls += 1
        times.frames_in += len(frames)
        times.to_array_ms += (t1 - t0) * 1000
        times.process_ms += (t2 - t1) * 1000
        times.to_frame_ms += (t3 - t2) * 1000
        return [out]

    return on_frames


# aiortc's VP8 encoder turns libvpx's temporal denoiser on and runs at speed 6 of 16. The frames it
# encodes here are the browser's own decoded camera frames with boxes drawn on them, already
# denoised once; without the denoiser and at speed 10 a 640x480 frame of the astronaut clip cost
# 1.7 ms of CPU instead of 2.6 at the same bit rate (165-170 kbps) and the same PSNR (32.0 against
# 32.1 dB): scripts/bench_webrtc.py's encode+send share is the second largest after `process`.
LEAN_VP8_OPTIONS = {"noise-sensitivity": "0", "cpu-used": "-10"}


def lean_vp8_encoder():
    """aiortc's Vp8Encoder with LEAN_VP8_OPTIONS: it builds the codec context itself, with
    aiortc's settings but those two, and leaves everything else (packets, bit rate) to aiortc."""
    import av
    from aiortc.codecs import vpx

    class LeanVp8Encoder(vpx.Vp8Encoder):
        def encode(self, frame, force_keyframe: bool = False):
            # aiortc's own rule for a new codec context (a new size, or the bit rate moved by
            # over 10%), applied first, so that aiortc finds a current one and keeps it.
            codec = self.codec
            if (codec is None or (frame.width, frame.height) != (codec.width, codec.height)
                    or abs(self.target_bitrate - codec.bit_rate) / codec.bit_rate > 0.1):
                self.codec = self._lean_codec(frame.width, frame.height)
            return super().encode(frame, force_keyframe)

        def _lean_codec(self, width: int, height: int):
            codec = av.CodecContext.create("libvpx", "w")
            codec.width, codec.height = width, height
            codec.bit_rate = rate = self.target_bitrate
            codec.pix_fmt = "yuv420p"
            codec.gop_size, codec.qmin, codec.qmax = 3000, 2, 56
            # aiortc's options (its CBR at the target rate, no lag, one partition), then ours.
            codec.options = {
                "bufsize": str(rate), "minrate": str(rate), "maxrate": str(rate),
                "deadline": "realtime", "lag-in-frames": "0", "overshoot-pct": "15",
                "undershoot-pct": "100", "partitions": "0", "static-thresh": "1",
                **LEAN_VP8_OPTIONS}
            codec.thread_count = vpx.number_of_threads(width * height, os.cpu_count() or 1)
            return codec

    return LeanVp8Encoder


def use_lean_vp8_encoder() -> None:
    """Make aiortc encode the VP8 video it sends with LeanVp8Encoder (idempotent).

    aiortc picks its encoder by name in `aiortc.codecs.get_encoder`, so the name is what changes.
    """
    import aiortc.codecs

    if getattr(aiortc.codecs.Vp8Encoder, "lean", False):
        return
    encoder = lean_vp8_encoder()
    encoder.lean = True
    aiortc.codecs.Vp8Encoder = encoder


# A viewer who pressed Start and sees nothing needs to hear so: a few seconds is longer than a
# start takes (1-2 s on a busy 2-core server, scripts/bench_webrtc.py --starts).
NO_FRAME_AFTER_S = 5.0
NO_FRAME_MESSAGE = (
    "No annotated video has come back {seconds:.0f} s after Start. Press STOP and START again; "
    "if the video stays black, reload the page. On a network that blocks video calls (a strict "
    "firewall or VPN) the server needs a TURN relay: see EMOTION_ICE_SERVERS in the README.")


class StartWatch:
    """Says, once a stream has played for NO_FRAME_AFTER_S without a processed frame, what a viewer
    can do; the Webcam page calls `check` on each of its reruns."""

    def __init__(self, after_s: float = NO_FRAME_AFTER_S, clock=time.monotonic):
        self.after_s = after_s
        self.clock = clock
        self._since: float | None = None
        self._frames_at_start = 0

    def check(self, playing: bool, frames: int) -> str | None:
        """The message to show now, or None. `frames`: the processor's count of processed frames."""
        if not playing:
            self._since = None
            return None
        if self._since is None:
            self._since, self._frames_at_start = self.clock(), frames
        waited = self.clock() - self._since
        if frames > self._frames_at_start or waited < self.after_s:
            return None
        return NO_FRAME_MESSAGE.format(seconds=waited)


# streamlit-webrtc (0.79) resets a streamer's context, stopping its worker, when Streamlit's count of
# finished script runs has moved on by more than one since the streamer was last rendered: meant for
# a viewer who went to another page and came back. Streamlit increments that count on its event loop
# when it sends a run's "finished" message, so a run that starts right after another one (several
# do while a connection is set up, with the event loop busy with ICE and DTLS) can read a count one
# behind, and the run after it sees a gap that is not there: the stream stops after its first frame.
# scripts/bench_webrtc.py --starts --fresh-server showed it in 1 of the first 2 starts with the file
# watcher on. The app's own count of full runs, kept in the session state by app.py, does not lag.
FULL_RUNS_KEY = "emotion_full_runs"


def count_full_run(state: MutableMapping) -> None:
    """Count a full run of the app (not a fragment's, nor one cut short); app.py calls it last."""
    state[FULL_RUNS_KEY] = state.get(FULL_RUNS_KEY, 0) + 1


def keep_streamer_across_reruns(state: MutableMapping, key: str) -> None:
    """Call before `webrtc_streamer(key=key)`: when the previous full run rendered this page, the
    streamer's context is current, and streamlit-webrtc's check (which can misfire, see above) is
    skipped for this run; after another page has run, the check is left to reset the context."""
    runs = state.get(FULL_RUNS_KEY, 0)
    mark = f"{key}__rendered_after_runs"
    previous = state.get(mark)
    state[mark] = runs
    context = state.get(key)
    if context is None or previous is None or runs - previous > 1:
        return
    if hasattr(context, "_last_rendered_run_count"):
        context._last_rendered_run_count = None
