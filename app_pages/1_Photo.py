"""Photo page: upload or pick a photo, see each face's emotion, download the results.

The photo, its results and the settings are kept in the session: switching to another page and
back shows them again.
"""

from __future__ import annotations

import hashlib

import streamlit as st

from emotion import photo, registry
from emotion.app import formatting, ui
from emotion.errors import EmotionError

st.set_page_config(page_title="Photo · Facial emotion recognition", page_icon="📷", layout="wide")
st.title("Emotions in a photo")
state = st.session_state

with st.expander("Detection settings"):
    min_face = ui.kept(
        st.slider, "photo.min_face", 4,
        "Minimum face size (% of the photo's shorter side)", 1, 30,
        help="Smaller finds faces further away, and more false ones.",
    )
    sensitivity = ui.kept(
        st.slider, "photo.sensitivity", 6,
        "Sensitivity (detector's min_neighbors)", 1, 15,
        help="Lower accepts less certain faces: more found, more false ones.",
    )
    profiles = ui.kept(
        st.toggle, "photo.profiles", False, "Faces in profile too",
        help="Also finds faces turned to the side; detection takes about four times as long. "
             "Faces found either way keep the same box and the same scores.",
    )
    mirror = ui.kept(
        st.toggle, "photo.mirror", True, "Check each face several ways",
        help=formatting.views_help(registry.model_info()),
    )
settings = photo.detection_settings(min_face, sensitivity, profiles)

source = ui.kept(st.radio, ui.PHOTO_SOURCE, ui.UPLOAD_PHOTO, "Photo",
                 [ui.UPLOAD_PHOTO, ui.SAMPLE_PHOTO], horizontal=True)
data, name = None, None
if source == ui.UPLOAD_PHOTO:
    st.file_uploader(
        f"A photo ({', '.join(photo.PHOTO_TYPES)}; at most {photo.MAX_UPLOAD_MB} MB)",
        type=list(photo.PHOTO_TYPES),
        max_upload_size=photo.MAX_UPLOAD_MB,
        key=ui.PHOTO_UPLOAD,
        on_change=ui.keep_upload,
    )
    kept_upload = state.get(ui.PHOTO_KEPT_UPLOAD)
    if kept_upload is not None:
        name, data = kept_upload
        if state.get(ui.PHOTO_UPLOAD) is None:  # back from another page: the uploader is empty
            st.caption(f"Showing `{name}`, uploaded earlier; upload another photo to replace it.")
else:
    samples = {photo.sample_name(p): p for p in photo.sample_photos()}
    if not samples:
        st.warning("No sample photos in images/: upload one of your own instead.")
    else:
        if state.get(ui.KEPT + ui.PHOTO_SAMPLE) not in samples:
            state.pop(ui.KEPT + ui.PHOTO_SAMPLE, None)
            state.pop(ui.PHOTO_SAMPLE, None)
        chosen = ui.kept(st.selectbox, ui.PHOTO_SAMPLE, next(iter(samples)), "Sample photo",
                         list(samples))
        data, name = samples[chosen].read_bytes(), chosen

if data is None:
    st.info("Upload a photo with one or more faces, or pick a sample photo.")
    st.stop()

recognizer = ui.recognizer_or_stop()
# The result is kept with what made it: the same photo, settings and model are not analysed again
# when the page reruns (choosing a face's chart) or the user comes back from another page.
made_of = (hashlib.sha1(data).hexdigest(), name, settings, mirror, id(recognizer))
kept_result = state.get(ui.PHOTO_RESULT)
if kept_result is not None and kept_result[0] == made_of:
    result = kept_result[1]
else:
    try:
        result = photo.analyse(data, name, recognizer, settings, tta=mirror)
    except EmotionError as exc:  # not an image, too large, settings out of range
        st.error(f"{exc}")
        st.stop()
    state[ui.PHOTO_RESULT] = (made_of, result)

count = len(result.faces)
for note in result.notes:
    st.info(note)
if not result.faces:
    st.warning("No face found in this photo. Tips:")
    st.markdown("\n".join(f"- {tip}" for tip in photo.no_face_tips(result, settings)))
else:
    st.success(f"{count} face{'s' if count != 1 else ''} found, numbered on the photo as in the "
               "table.")

# A row that wraps: two buttons a line on a phone rather than four lines of one.
downloads = st.container(horizontal=True)
downloads.download_button(
    "Photo (PNG)", result.annotated_bytes("png"), f"{result.stem}-emotions.png", "image/png",
    on_click="ignore", help="The photo with the numbered boxes and labels.",
)
downloads.download_button(
    "Photo (JPEG)", result.annotated_bytes("jpeg"), f"{result.stem}-emotions.jpg", "image/jpeg",
    on_click="ignore", help="The photo with the numbered boxes and labels.",
)
downloads.download_button(
    "Results (CSV)", result.csv_text, f"{result.stem}-emotions.csv", "text/csv",
    on_click="ignore",
    help="One row per face, numbered as on the photo, with all seven probabilities.",
)
downloads.download_button(
    "Results (JSON)", result.json_text, f"{result.stem}-emotions.json", "application/json",
    on_click="ignore",
    help="The faces in the photo's order, with their boxes and all seven probabilities.",
)

left, right = st.columns([2, 1])
left.image(
    ui.displayable(result.annotated_rgb()),
    caption=f"{result.name} ({result.width}x{result.height})",
    width="stretch",
)

if result.faces:
    with right:
        st.dataframe(
            formatting.faces_frame(result.faces),
            hide_index=True,
            width="stretch",
            column_config={
                "face": st.column_config.NumberColumn("face", width="small"),
                "emotion": st.column_config.TextColumn("emotion"),
                # A number, not a bar: the theme's red bar would read as "angry".
                "confidence": st.column_config.NumberColumn("confidence", format="%.0f%%"),
            },
        )
        if any(face.uncertain for face in result.faces):
            st.caption(formatting.UNCERTAIN_CAPTION)
        number = st.selectbox(
            "Scores of one face",
            range(1, count + 1),
            format_func=lambda n: formatting.face_title(n, result.faces[n - 1]),
        )
        face = result.faces[number - 1]
        thumb, chart = st.columns([1, 3])
        thumb.image(result.face_rgb(number - 1), width=96)
        thumb.caption(f"at x={face.box.x}, y={face.box.y}, {face.box.w}x{face.box.h} px")
        chart.altair_chart(formatting.probability_chart(face.probabilities), width="stretch")
