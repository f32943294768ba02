"""The app: its pages in the sidebar, and the home page (what the app does, which model it uses
and how well that model measured). Start it with `streamlit run app.py`."""

from __future__ import annotations

import streamlit as st

from emotion import photo, registry
from emotion.app import formatting, ui, webrtc
from emotion.config import PROJECT_ROOT, environment_problems

# (file, title, icon, what it does): the sidebar and the home page's links both come from here.
# No Material icons: Streamlit fetches their favicons from Google's font host, which an offline
# app must not ask (tests/test_offline.py); emoji need a font that many servers lack.
PAGES = [
    ("app_pages/1_Photo.py", "Photo", None,
     "upload a photo and get every face's emotion, with downloads"),
    ("app_pages/2_Webcam.py", "Webcam", None, "live emotions from your camera"),
    ("app_pages/3_Training.py", "Training", None,
     "train a new model and make it the app's model"),
    ("app_pages/4_Dataset.py", "Dataset", None,
     "class balance, sample faces, duplicates and leakage"),
]
WEBCAM_PAGE = "app_pages/2_Webcam.py"
PAGES = [p for p in PAGES if (PROJECT_ROOT / p[0]).is_file()]  # a missing page is left out


def home() -> None:
    st.set_page_config(page_title="Facial emotion recognition", page_icon="🙂", layout="wide")

    st.title("Facial emotion recognition")
    st.write(
        "Finds the faces in a photo or in your webcam's video and names the emotion each one "
        "shows: angry, disgust, fear, happy, sad, surprise or neutral."
    )
    try_photo, try_webcam = st.columns(2)
    if try_photo.button("Try a sample photo", icon=":material/photo_camera:", type="primary",
                        width="stretch"):
        ui.open_sample_photo(photo.FIRST_SAMPLE)
    if WEBCAM_PAGE in (p[0] for p in PAGES) and try_webcam.button(
            "Open the webcam", icon=":material/videocam:", width="stretch"):
        st.switch_page(WEBCAM_PAGE)

    # Model facts come from the file and its metrics.json only: the home page never loads TensorFlow.
    info = registry.model_info()
    st.subheader("How good is it?")
    if info.exists:
        said = formatting.quality_sentences(registry.read_metrics(registry.metrics_path(info.path)))
        if said:
            st.markdown(" ".join(said))
        measured = [(info.accuracy_label, info.accuracy_text)]
        if info.macro_f1 is not None:
            measured.append(("Macro-F1", f"{info.macro_f1:.3f}"))
        if info.test_images:
            measured.append(("Test images", f"{info.test_images:,}"))
        figures = st.container(horizontal=True, gap="medium")  # side by side, wrapping on a phone
        for label, value in measured:
            figures.metric(label, value, width="content")
        st.caption(formatting.model_caption(info))
        if info.test_accuracy is None and info.val_accuracy is None:
            st.info(
                f"No test metrics next to the model ({registry.metrics_path(info.path).name}), "
                "so its accuracy is not measured."
            )
        st.caption(formatting.HUMAN_CAPTION)
    else:
        st.warning(
            f"No model at `{info.shown_path}`. Train one on the Training page, or set "
            "EMOTION_MODEL to the path of a .keras model."
        )

    st.subheader("Pages")
    for page, label, icon, what in PAGES:
        st.page_link(page, label=label, icon=icon)
        st.caption(what[:1].upper() + what[1:] + ".")


for problem in environment_problems():  # a setting the operator mistyped: said on every page
    st.error(problem)

navigation = [st.Page(home, title="Home", icon=None, default=True)]
navigation += [st.Page(page, title=label, icon=icon, url_path=label) for page, label, icon, _ in PAGES]
st.navigation(navigation).run()
webrtc.count_full_run(st.session_state)  # after the page: see emotion/app/webrtc.py
