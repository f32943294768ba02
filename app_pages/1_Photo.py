"""Photo page: upload or pick a photo, see each face's emotion, download the results."""

from __future__ import annotations

import streamlit as st

from emotion import photo
from emotion.app import formatting, ui
from emotion.images import ImageError

st.set_page_config(page_title="Photo · Facial emotion recognition", page_icon="📷", layout="wide")
st.title("Emotions in a photo")

with st.expander("Detection settings"):
    min_face = st.slider(
        "Minimum face size (% of the photo's shorter side)",
        1,
        30,
        4,
        help="Smaller finds faces further away, and more false ones.",
    )
    sensitivity = st.slider(
        "Sensitivity (detector's min_neighbors)",
        1,
        15,
        6,
        help="Lower accepts less certain faces: more found, more false ones.",
    )
    profiles = st.toggle(
        "Faces in profile too",
        help="Also finds faces turned to the side; detection takes about four times as long.",
    )
settings = photo.detection_settings(min_face, sensitivity, profiles)

source = st.radio("Photo", ["Upload a photo", "Use a sample photo"], horizontal=True)
data, name = None, None
if source == "Upload a photo":
    upload = st.file_uploader(
        f"A photo ({', '.join(photo.PHOTO_TYPES)}; at most {photo.MAX_UPLOAD_MB} MB)",
        type=list(photo.PHOTO_TYPES),
        max_upload_size=photo.MAX_UPLOAD_MB,
    )
    if upload is not None:
        data, name = upload.getvalue(), upload.name
else:
    samples = photo.sample_photos()
    if not samples:
        st.warning("No sample photos in images/: upload one of your own instead.")
    else:
        chosen = st.selectbox("Sample photo", samples, format_func=lambda p: p.name)
        data, name = chosen.read_bytes(), chosen.name

if data is None:
    st.info("Upload a photo with one or more faces, or pick a sample photo.")
    st.stop()

recognizer = ui.recognizer_or_stop()
try:
    result = photo.analyse(data, name, recognizer, settings)
except ImageError as exc:
    st.error(f"{exc}")
    st.stop()

left, right = st.columns([3, 2])
left.image(
    ui.displayable(result.annotated_rgb()),
    caption=f"{result.name} ({result.width}x{result.height})",
    width="stretch",
)

with right:
    if not result.faces:
        st.warning("No face found in this photo. Tips:")
        st.markdown("\n".join(f"- {tip}" for tip in photo.NO_FACE_TIPS))
    else:
        st.success(f"{len(result.faces)} face{'s' if len(result.faces) != 1 else ''} found")
    for i, face in enumerate(result.faces):
        with st.container(border=True):
            thumb, text = st.columns([1, 3])
            thumb.image(result.face_rgb(i), width=96)
            text.markdown(f"**Face {i + 1}: {face.label}** ({face.confidence:.0%})")
            text.caption(f"at x={face.box.x}, y={face.box.y}, {face.box.w}x{face.box.h} px")
            st.altair_chart(formatting.probability_chart(face.probabilities), width="stretch")

    st.subheader("Downloads")
    d1, d2 = st.columns(2)
    d1.download_button(
        "Annotated photo (PNG)",
        result.annotated_bytes("png"),
        f"{result.stem}-emotions.png",
        "image/png",
        on_click="ignore",
    )
    d2.download_button(
        "Annotated photo (JPEG)",
        result.annotated_bytes("jpeg"),
        f"{result.stem}-emotions.jpg",
        "image/jpeg",
        on_click="ignore",
    )
    d3, d4 = st.columns(2)
    d3.download_button(
        "Results (CSV)",
        result.csv_text,
        f"{result.stem}-emotions.csv",
        "text/csv",
        on_click="ignore",
    )
    d4.download_button(
        "Results (JSON)",
        result.json_text,
        f"{result.stem}-emotions.json",
        "application/json",
        on_click="ignore",
    )
