"""Webcam page: live emotions from the browser's camera, with FPS, a timeline and spoken feedback."""

from __future__ import annotations

import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from emotion import live, speech
from emotion.app import formatting, ui, webrtc

st.set_page_config(page_title="Webcam · Facial emotion recognition", page_icon="🎥", layout="wide")
st.title("Live emotions from your webcam")

recognizer = ui.recognizer_or_stop()
try:
    rtc_configuration = webrtc.streamlit_rtc_configuration()
except webrtc.IceConfigError as exc:
    st.error(f"ICE server configuration: {exc}")
    st.stop()

# One processor per browser session; the webrtc worker thread calls it, this script only reads it.
if "live_processor" not in st.session_state:
    st.session_state.live_processor = live.LiveProcessor(recognizer)
    st.session_state.speaker = speech.BrowserSpeaker()
    st.session_state.stats_file = webrtc.stats_file_from_env()  # only the browser test sets one
    st.session_state.start_watch = webrtc.StartWatch()
processor: live.LiveProcessor = st.session_state.live_processor
processor.recognizer = recognizer  # a model reloaded on another page is used from the next frame
speaker: speech.BrowserSpeaker = st.session_state.speaker

video, side = st.columns([3, 2])
with video:
    webrtc.keep_streamer_across_reruns(st.session_state, "webcam")  # every start works
    ctx = webrtc_streamer(
        key="webcam",
        mode=WebRtcMode.SENDRECV,
        rtc_configuration=rtc_configuration,
        queued_video_frames_callback=webrtc.frames_callback(
            processor, st.session_state.get("stats_file")),
        media_stream_constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}},
                                  "audio": False},
        async_processing=True,
    )
    st.caption("Your video goes only to this app's server. A face once found is looked for again "
               "only around where it was, and the whole frame is scanned over every half second "
               "for new ones; labels are averaged over the last few frames so they do not flicker.")

with side:
    speak = st.toggle("Speak the emotion", help="Says the main face's emotion when it changes and holds.")
    lang = st.selectbox("Language", speech.LANGUAGES, disabled=not speak)

playing = ctx.state.playing
started = playing or ctx.state.signalling  # Start pressed: connecting, or playing


@st.fragment(run_every=1.0 if started else None)
def live_panel() -> None:
    stats = processor.stats()
    with side:
        hint = st.session_state.start_watch.check(started, stats.frames)
        if hint:
            st.warning(hint, icon="⚠️")
        a, b, c = st.columns(3)
        a.metric("FPS", f"{stats.fps:.1f}" if playing else "-")
        b.metric("Main face", stats.main_label or "none")
        c.metric("ms per frame", f"{stats.recent_process_ms:.0f}" if stats.frames else "-")
        if speak and playing:
            clip = speaker.clip_to_play(stats.main_label, lang)
            if clip is not None:
                st.audio(clip.data, format=clip.mime, autoplay=True)

    st.subheader("Emotion timeline")
    series = processor.timeline.series()
    if not series["time_s"]:
        st.info("Start the camera: the main face's emotions will be charted here.")
        return
    data, spec = formatting.timeline_chart(series)  # a plain spec: a twelfth of line_chart's CPU
    st.vega_lite_chart(data, spec, width="stretch")
    if not playing:
        left, right = st.columns(2)
        left.download_button("Timeline (CSV)", processor.timeline.to_csv(), "emotion-timeline.csv",
                             "text/csv", on_click="ignore")
        if right.button("Clear timeline"):
            processor.reset()
            st.rerun()


live_panel()
