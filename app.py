"""The app: its pages in the sidebar, and the home page (what the app does, which model it uses
and how well that model measured). Start it with `streamlit run app.py`."""

from __future__ import annotations

import streamlit as st

from emotion import registry
from emotion.config import PROJECT_ROOT

# (file, title, icon, what it does): the sidebar and the home page's links both come from here.
PAGES = [
    ("app_pages/1_Photo.py", "Photo", ":material/photo_camera:",
     "upload a photo and get every face's emotion, with downloads"),
    ("app_pages/2_Webcam.py", "Webcam", ":material/videocam:", "live emotions from your camera"),
    ("app_pages/3_Training.py", "Training", ":material/model_training:",
     "train a new model and make it the app's model"),
    ("app_pages/4_Dataset.py", "Dataset", ":material/dataset:",
     "class balance, sample faces, duplicates and leakage"),
]
PAGES = [p for p in PAGES if (PROJECT_ROOT / p[0]).is_file()]  # a missing page is left out


def home() -> None:
    st.set_page_config(page_title="Facial emotion recognition", page_icon="🙂", layout="wide")

    st.title("Facial emotion recognition")
    st.write(
        "Finds every face in a photo or a webcam stream and names its expression as one of seven "
        "emotions: angry, disgust, fear, happy, sad, surprise, neutral. The model is a small "
        "convolutional network trained on FER2013 (48x48 grayscale faces)."
    )

    # Model facts come from the file and its metrics.json only: the home page never loads TensorFlow.
    info = registry.model_info()
    st.subheader("Model")
    if info.exists:
        measured = [(info.accuracy_label, info.accuracy_text)]
        if info.macro_f1 is not None:
            measured.append(("Macro-F1", f"{info.macro_f1:.3f}"))
        if info.test_images:
            measured.append(("Test images", f"{info.test_images:,}"))
        for col, (label, value) in zip(st.columns(3), measured):
            col.metric(label, value)
        saved = f"{info.modified:%Y-%m-%d %H:%M}"
        about = f"Model file: `{info.shown_path}` ({info.size_mb} MB, saved {saved})"
        if info.epochs_run:
            about += f"; trained for {info.epochs_run} epochs on `{info.data_source}`"
            if info.init:
                about += f", starting from the weights of `{info.init}`"
        st.caption(about)
        if info.test_accuracy is None and info.val_accuracy is None:
            st.info(
                f"No test metrics next to the model ({registry.metrics_path(info.path).name}), "
                "so its accuracy is not measured."
            )
    else:
        st.warning(
            f"No model at `{info.shown_path}`. Train one on the Training page, or set "
            "EMOTION_MODEL to the path of a .keras model."
        )

    st.subheader("Pages")
    for page, label, icon, what in PAGES:
        st.page_link(page, label=f"{label}: {what}", icon=icon)

    st.caption(
        "FER2013 accuracy is modest even for good models (human accuracy on it is about "
        "65%); treat the results as estimates, not facts about anyone's feelings."
    )


navigation = [st.Page(home, title="Home", icon=":material/home:", default=True)]
navigation += [st.Page(page, title=label, icon=icon, url_path=label) for page, label, icon, _ in PAGES]
st.navigation(navigation).run()
