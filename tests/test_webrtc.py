"""ICE configuration: explicit empty default, env var and secrets overrides, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from emotion.config import PROJECT_ROOT
from emotion.app.webrtc import IceConfigError, parse_ice_servers, rtc_configuration
from emotion.config import ICE_SERVERS_ENV

STUN = [{"urls": ["stun:stun.example.org:3478"]}]
TURN = [{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}]


def test_default_is_no_servers():
    assert rtc_configuration(environ={}) == {"iceServers": []}


def _run_fresh(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Python code in a new interpreter: aiortc must not be imported after TensorFlow (see below)."""
    return subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def test_streamlit_webrtc_keeps_the_empty_list():
    # An empty list, not None: streamlit-webrtc fills in public STUN servers only for None.
    code = """
import json
from streamlit_webrtc.config import compile_rtc_configuration
from emotion.app.webrtc import rtc_configuration
servers = compile_rtc_configuration(rtc_configuration()).iceServers
print(json.dumps([[s.urls, s.username] for s in servers]))
"""
    done = _run_fresh(code, {ICE_SERVERS_ENV: ""})
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    done = _run_fresh(code, {ICE_SERVERS_ENV: json.dumps(TURN)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [["turn:turn.example.org:3478", "u"]]


@pytest.mark.slow
def test_webrtc_works_after_tensorflow_is_loaded():
    """Photo page first, webcam page second: one server process loads TensorFlow, then aiortc.

    pylibsrtp (aiortc's SRTP) crashes the process with a segmentation fault in srtp_init() when
    TensorFlow was imported before it; importing the `emotion` package must prevent that.
    """
    code = """
import emotion
import tensorflow
from pylibsrtp import Policy, Session
import streamlit_webrtc
session = Session(policy=Policy(key=bytes(range(30)), ssrc_type=Policy.SSRC_ANY_OUTBOUND))
print(len(session.protect(bytes.fromhex("8000000100000001deadbeef") + bytes(50))))
"""
    done = _run_fresh(code)
    assert done.returncode == 0, (
        f"exit {done.returncode} (-11/139: segmentation fault): import pylibsrtp before TensorFlow,"
        " e.g. at the top of emotion/__init__.py"
    )
    assert done.stdout.strip().splitlines()[-1] == "72"


@pytest.mark.slow
def test_a_script_that_imports_keras_first_can_still_use_the_package():
    """`import keras` (on TensorFlow) before `import emotion`, as a notebook might: importing the
    package must not load pylibsrtp after TensorFlow, which would crash the process."""
    code = """
import keras
import emotion
from emotion.recognizer import EmotionRecognizer
import skimage.data
faces = EmotionRecognizer().recognize(skimage.data.astronaut()[:, :, ::-1].copy())
print(len(faces))
"""
    done = _run_fresh(code)
    assert done.returncode == 0, f"exit {done.returncode} (-11/139: segmentation fault)"
    assert done.stdout.strip().splitlines()[-1] == "1"


def test_env_var_list_or_object():
    assert rtc_configuration(environ={ICE_SERVERS_ENV: json.dumps(STUN)}) == {"iceServers": STUN}
    wrapped = json.dumps({"iceServers": TURN})
    assert rtc_configuration(environ={ICE_SERVERS_ENV: wrapped}) == {"iceServers": TURN}
    assert rtc_configuration(environ={ICE_SERVERS_ENV: "  "}) == {"iceServers": []}  # blank means unset


def test_secrets_and_precedence():
    secrets = {"ice_servers": TURN}
    assert rtc_configuration(environ={}, secrets=secrets) == {"iceServers": TURN}
    assert rtc_configuration(environ={}, secrets={"ice_servers": json.dumps(STUN)}) == {"iceServers": STUN}
    assert rtc_configuration(environ={ICE_SERVERS_ENV: json.dumps(STUN)}, secrets=secrets) == {"iceServers": STUN}
    assert rtc_configuration(environ={}, secrets={"other": 1}) == {"iceServers": []}


def test_malformed_json_is_a_clear_error():
    with pytest.raises(IceConfigError, match=r"\$EMOTION_ICE_SERVERS is not valid JSON .*line 1") as info:
        rtc_configuration(environ={ICE_SERVERS_ENV: "[{urls: stun:x}]"})
    assert '"urls"' in str(info.value)  # shows the expected shape
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("value, message", [
    ('{"urls": "stun:x"}', "must be a list"),
    ('[{"url": "stun:x"}]', 'server 0 needs "urls"'),
    ('[{"urls": []}]', 'server 0 needs "urls"'),
    ('["stun:x"]', 'server 0 needs "urls"'),
    ('[{"urls": "turn:x", "username": 5}]', "'username' must be a string"),
])
def test_wrong_shapes(value, message):
    with pytest.raises(IceConfigError, match=message):
        parse_ice_servers(value, "test")


def test_relay_policy_passes_through_to_the_browser():
    value = json.dumps({"iceServers": TURN, "iceTransportPolicy": "relay"})
    assert rtc_configuration(environ={ICE_SERVERS_ENV: value}) == {"iceServers": TURN,
                                                           "iceTransportPolicy": "relay"}
    with pytest.raises(IceConfigError, match='"iceTransportPolicy" must be "all" or "relay"'):
        rtc_configuration(environ={ICE_SERVERS_ENV: json.dumps({"iceServers": TURN,
                                                        "iceTransportPolicy": "turn"})})


def test_start_watch_speaks_up_only_when_no_frame_came():
    from emotion.app.webrtc import StartWatch

    now = [0.0]
    watch = StartWatch(after_s=5.0, clock=lambda: now[0])
    assert watch.check(False, 0) is None
    assert watch.check(True, 10) is None  # Start pressed; 10 frames from an earlier run
    now[0] = 4.9
    assert watch.check(True, 10) is None
    now[0] = 5.2
    message = watch.check(True, 10)
    assert message and "STOP and START again" in message and "5 s after Start" in message
    assert watch.check(True, 11) is None  # a frame came
    assert watch.check(False, 11) is None  # stopped: the next Start is timed afresh
    now[0] = 20.0
    assert watch.check(True, 11) is None
    now[0] = 24.0
    assert watch.check(True, 11) is None
    now[0] = 25.5
    assert watch.check(True, 11) is not None


def test_a_stats_folder_gets_a_file_per_session(tmp_path):
    from emotion.app.webrtc import StatsFile, stats_file_from_env

    a, b = stats_file_from_env({"EMOTION_LIVE_STATS": str(tmp_path)}), StatsFile(tmp_path)
    assert a.path.parent == tmp_path == b.path.parent and a.path != b.path
    assert stats_file_from_env({"EMOTION_LIVE_STATS": str(tmp_path / "one.json")}).path == \
        tmp_path / "one.json"


def test_the_callback_takes_and_returns_i420_with_the_same_picture(model_path):
    """Decoded frames are I420: converted by OpenCV, processed, returned as I420, the same picture
    as the BGR path gives (up to rounding)."""
    import asyncio

    import av
    import cv2
    import numpy as np

    from emotion.app.webrtc import frames_callback
    from emotion.clips import astronaut_clip
    from emotion.live import LiveProcessor
    from emotion.recognizer import EmotionRecognizer

    recognizer = EmotionRecognizer(model_path)
    bgr = astronaut_clip(frames=3)[1]
    i420 = av.VideoFrame.from_ndarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
    i420.pts = 5
    plain = av.VideoFrame.from_ndarray(bgr, format="bgr24")
    plain.pts = 5
    out_i420 = asyncio.run(frames_callback(LiveProcessor(recognizer))([i420]))[0]
    out_bgr = asyncio.run(frames_callback(LiveProcessor(recognizer))([plain]))[0]
    assert out_i420.format.name == "yuv420p" and out_bgr.format.name == "bgr24"
    assert (out_i420.width, out_i420.height, out_i420.pts) == (640, 480, 5)
    diff = np.abs(out_i420.to_ndarray(format="bgr24").astype(int)
                  - out_bgr.to_ndarray(format="bgr24").astype(int))
    assert diff.mean() < 3, diff.mean()


def test_timeline_chart_is_a_plain_spec_in_the_palette():
    from emotion.app.session_view import timeline_chart
    from emotion.labels import palette
    from emotion.timeline import SHOWN_LABELS, Band

    bands = [Band(0.0, 2.5, "happy"), Band(2.5, 3.0, "uncertain"), Band(3.0, 4.0, "sad")]
    data, spec = timeline_chart(bands)
    assert list(data["emotion"]) == ["happy", "uncertain", "sad"]
    assert list(data["start"]) == [0.0, 2.5, 3.0] and list(data["end"]) == [2.5, 3.0, 4.0]
    colour = spec["encoding"]["color"]["scale"]
    assert colour == {"domain": list(SHOWN_LABELS), "range": palette(SHOWN_LABELS)}


def test_a_streamer_rendered_in_the_previous_full_run_is_kept():
    """streamlit-webrtc's orphan check can misfire on a lagging run count; the app's own count
    skips it while the page keeps rendering, and leaves it in place after another page ran."""
    import streamlit_webrtc.component as component

    from emotion.app.webrtc import count_full_run, keep_streamer_across_reruns

    assert hasattr(component.WebRtcStreamerContext(worker=None, state=None),
                   "_last_rendered_run_count"), "streamlit-webrtc renamed what the app relies on"

    class Context:
        _last_rendered_run_count = 7

    state: dict = {}
    keep_streamer_across_reruns(state, "webcam")  # first render: no context yet
    state["webcam"] = context = Context()
    count_full_run(state)
    keep_streamer_across_reruns(state, "webcam")  # the very next full run
    assert context._last_rendered_run_count is None
    context._last_rendered_run_count = 9
    count_full_run(state)
    count_full_run(state)  # another page ran in between
    keep_streamer_across_reruns(state, "webcam")
    assert context._last_rendered_run_count == 9  # the library decides
    context._last_rendered_run_count = 12
    keep_streamer_across_reruns(state, "webcam")  # a run cut short before it was counted
    assert context._last_rendered_run_count is None


def test_the_lean_vp8_encoder_is_what_aiortc_uses_and_sends_the_picture(monkeypatch):
    """After use_lean_vp8_encoder, aiortc's encoder for VP8 runs without the denoiser at speed 10,
    also after a bit rate change, and its packets decode to the picture it was given."""
    from fractions import Fraction

    import av
    import cv2
    import numpy as np
    from aiortc.codecs import get_encoder
    from aiortc.codecs.vpx import Vp8Decoder, vp8_depayload
    from aiortc.jitterbuffer import JitterFrame
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    from emotion.app.webrtc import LEAN_VP8_OPTIONS, use_lean_vp8_encoder
    from emotion.clips import astronaut_clip

    webcam_frame = astronaut_clip(frames=3)[1]

    use_lean_vp8_encoder()
    use_lean_vp8_encoder()  # twice is once
    encoder = get_encoder(RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000))
    assert getattr(type(encoder), "lean", False)
    built = []  # every codec context the encoder builds, to tell its own from aiortc's
    lean_codec = type(encoder)._lean_codec
    monkeypatch.setattr(type(encoder), "_lean_codec",
                        lambda self, w, h: built.append(lean_codec(self, w, h)) or built[-1])
    yuv = cv2.cvtColor(webcam_frame, cv2.COLOR_BGR2YUV_I420)
    payloads = []
    for i in range(3):
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts, frame.time_base = i * 3000, Fraction(1, 90000)
        if i == 2:
            encoder.target_bitrate = 1_200_000  # as the receiver's estimate moves
        packets, _ = encoder.encode(frame)
        payloads.append(packets)
        # Ours, and libvpx took our options (PyAV keeps only the ones a codec refused).
        assert encoder.codec is built[-1] and not set(LEAN_VP8_OPTIONS) & set(encoder.codec.options)
    assert len(built) == 2 and encoder.codec.bit_rate == 1_200_000
    # The first frame's packets (a key frame), depacketized and decoded, give the picture back.
    data = b"".join(vp8_depayload(p) for p in payloads[0])
    (decoded,) = Vp8Decoder().decode(JitterFrame(data=data, timestamp=0))
    picture = decoded.to_ndarray(format="bgr24")
    assert picture.shape == webcam_frame.shape
    assert np.abs(picture.astype(int) - webcam_frame.astype(int)).mean() < 12
