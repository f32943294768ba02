"""Webcam page: live emotions from the browser's camera, one steady readout, a timeline and spoken feedback."""

from __future__ import annotations

import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from emotion import speech
from emotion.app import session_view, ui, webrtc
from emotion.app.sessions import WebcamSession
from emotion.config import UNCERTAIN_BELOW

st.set_page_config(page_title="Webcam · Facial emotion recognition", page_icon="🎥", layout="wide")
st.title("Live emotions from your webcam")

recognizer = ui.recognizer_or_stop()
webrtc.use_lean_vp8_encoder()  # the video sent back costs a third less to encode
try:
    rtc_configuration = webrtc.streamlit_rtc_configuration()
except webrtc.IceConfigError as exc:
    st.error(f"ICE server configuration: {exc}")
    st.stop()

# One session per browser tab, kept on the server under the key in the page's address, so a
# refresh finds its timeline; the webrtc worker thread feeds the processor, this script reads it.
session: WebcamSession = ui.webcam_session(lambda: WebcamSession.open(recognizer))
processor = session.use(recognizer)  # a model reloaded on another page gets a processor of its own
if "start_watch" not in st.session_state:  # says so when Start shows no frame in a few seconds
    st.session_state.start_watch = webrtc.StartWatch()

video, side = st.columns([3, 2])
with video:
    webrtc.keep_streamer_across_reruns(st.session_state, "webcam")  # every start works
    ctx = webrtc_streamer(
        key="webcam",
        mode=WebRtcMode.SENDRECV,
        rtc_configuration=rtc_configuration,
        queued_video_frames_callback=webrtc.frames_callback(processor, session.times),
        media_stream_constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}},
                                  "audio": False},
        async_processing=True,
    )
    playing = ctx.state.playing
    last_frame = processor.last_frame()
    if not playing and last_frame is not None:
        st.image(last_frame, channels="BGR", caption="The session's last frame",
                 width="stretch")
    st.caption(
        "Your video goes only to this app's server. Each face's emotion is averaged over about "
        "the last second, and the label changes only once a new emotion has led that average "
        f"for half a second, so it does not flicker; under {UNCERTAIN_BELOW:.0%} confidence the "
        "face is shown as uncertain and nothing is said. The box, \"Main face\" (the largest "
        "face), the voice and the timeline all show this one reading. The session stays on this "
        "server while you keep this page's address: a refresh finds it again.")

with side:
    speak = st.toggle("Speak the emotion aloud",
                      help="Says the main face's emotion when it changes and holds; never "
                           "says \"uncertain\".")
    lang = st.selectbox("Voice language", speech.LANGUAGES, format_func=speech.language_name,
                        disabled=not speak)

started = playing or ctx.state.signalling  # Start pressed: connecting, or playing


@st.fragment(run_every=1.0 if started else None)
def live_panel() -> None:
    stats = processor.stats()
    with side:
        hint = st.session_state.start_watch.check(started, stats.frames)
        if hint:
            st.warning(hint, icon="⚠️")
        a, b, c = st.columns(3)
        a.metric("Main face", stats.main_label or "none")
        b.metric("FPS", f"{stats.fps:.1f}" if playing else "-")
        c.metric("ms per frame", f"{stats.recent_process_ms:.0f}" if stats.frames else "-")
        if speak and playing:
            clip = session.speaker.clip_to_play(stats.main_label, lang)
            if clip is not None:
                # Heard, not seen: a bare player (0:00 until it loads) only puzzles people, and
                # a hidden audio element still plays.
                st.markdown('<style>[data-testid="stAudio"]{display:none}</style>',
                            unsafe_allow_html=True)
                st.audio(clip.data, format=clip.mime, autoplay=True)
                st.caption(f"Said: “{clip.text}”")

    st.subheader("Emotion timeline")
    bands = processor.timeline.main_bands()
    if not bands:
        st.info("Start the camera: the main face's emotion will be drawn here as coloured "
                "bands over time.")
        return
    data, spec = session_view.timeline_chart(bands)  # a plain spec: a twelfth of Altair's CPU
    st.vega_lite_chart(data, spec, width="stretch", height=session_view.TIMELINE_HEIGHT)
    st.markdown(session_view.legend_html(), unsafe_allow_html=True)
    if st.toggle("Show the smoothed probabilities", key="show_shares",
                 help="The main face's seven probabilities over time, averaged as the readout is."):
        st.altair_chart(session_view.shares_chart(processor.timeline.series(max_points=400)),
                        width="stretch", height=session_view.SHARES_HEIGHT)
    if not playing:
        summary = processor.timeline.summary()
        with side:  # beside the session's last frame
            st.subheader("Session summary")
            st.write(session_view.session_sentence(summary))
            if summary.shares:
                st.dataframe(session_view.summary_frame(summary), width="stretch")
            left, right = st.columns(2)
            left.download_button("Timeline (CSV)", processor.timeline.to_csv(),
                                 "emotion-timeline.csv", "text/csv", on_click="ignore")
            if right.button("Clear timeline"):
                processor.reset()
                st.rerun()


live_panel()
