"""Dataset page: class balance, sample faces, image sizes, duplicates and train/test leakage."""

from __future__ import annotations

import json

import streamlit as st

from emotion.app import formatting, ui
from emotion.draw import face_grid
from emotion.errors import EmotionError, sentence

st.set_page_config(page_title="Dataset · Facial emotion recognition", page_icon="🗂️", layout="wide")
st.title("Dataset audit")
st.write(
    "What the model learns from: how many faces of each emotion each split has, what they "
    "look like, and whether identical images sit in more than one split or carry two labels."
)

source = ui.data_source_picker("dataset_path", horizontal=True)
if source and (problem := ui.missing_data(source)):
    st.error(problem)
    st.stop()
if not source:
    st.info("Give the path of a FER2013 folder or fer2013.csv, or upload a fer2013.csv.")
    st.stop()

st.caption(
    "The first look at a large image folder (FER2013 has over 32,000 images) takes a "
    "minute or so; "
    "after that it comes from the cache."
)
try:
    dataset, report = ui.audit_data(source)
except (EmotionError, OSError) as exc:  # loaders name the file; an OSError at least names its path
    st.error(f"The data could not be read: {sentence(exc)}")
    st.stop()

# ---------------------------------------------------------------- summary

summary = st.container(horizontal=True, gap="medium")  # side by side, wrapping on a phone
for label, value in [
    ("Images", f"{report.total:,}"),
    ("Distinct images", f"{report.distinct:,}"),
    ("Duplicated across splits", f"{report.cross_split_groups:,} groups"),
    ("Conflicting labels", f"{report.conflicting_label_groups:,} groups"),
    ("Near-blank", f"{report.near_blank:,}"),
]:
    summary.metric(label, value, width="content")

# ---------------------------------------------------------------- class balance

st.subheader("Class distribution per split")
counts = formatting.class_counts_frame(report.per_split_class)
left, right = st.columns([3, 2])
left.bar_chart(counts.drop(columns="total"), stack=False, y_label="images", sort=False)
right.dataframe(counts, width="stretch")
smallest, largest = counts["total"].idxmin(), counts["total"].idxmax()
if counts["total"].min() > 0:
    st.caption(
        f"{largest} has {counts['total'].max() / counts['total'].min():.0f}x the images of "
        f"{smallest}: without class weights or resampling the model favours the large classes."
    )

# ---------------------------------------------------------------- sample faces

st.subheader("Sample faces per class")
c1, c2 = st.columns([1, 3])
split = c1.selectbox("Split", list(dataset.splits))
seed = c1.number_input("Shuffle", 0, 10_000, 0, help="Another number draws other faces.")
part = dataset[split]
c2.image(
    face_grid(part.images, part.labels, per_class=10, seed=int(seed)),
    caption=f"10 random {split} faces per emotion (48x48, as the model sees them)",
    width="content",  # its own 570 px, or narrower on a phone
)

# ---------------------------------------------------------------- sizes

st.subheader("Image sizes")
if report.not_48x48:
    sizes = ", ".join(f"{size}: {n}" for size, n in report.sizes_not_48x48.items())
    st.warning(f"{report.not_48x48:,} images were not 48x48 and were resized on load ({sizes}).")
else:
    st.success("Every image is 48x48, as FER2013 should be.")
if report.unreadable:
    st.warning(f"{len(report.unreadable)} files could not be read and were skipped.")
    with st.expander("Unreadable files"):
        st.code("\n".join(report.unreadable[:200]))

# ---------------------------------------------------------------- duplicates and leakage

st.subheader("Duplicates and leakage")
rows = [
    {
        "split": s,
        "duplicate groups": report.duplicate_groups_within[s],
        "extra copies": report.duplicate_images_within[s],
    }
    for s in report.duplicate_groups_within
]
st.dataframe(rows, width="stretch", hide_index=True)
if report.cross_split_groups:
    pairs = ", ".join(f"{pair}: {n}" for pair, n in report.cross_split_pairs.items())
    st.warning(
        f"{report.cross_split_groups:,} groups of identical images are in more than one split "
        f"({pairs}): test scores on them measure memory, not generalisation."
    )
else:
    st.success("No identical image is in more than one split.")
if report.conflicting_label_groups:
    st.warning(
        f"{report.conflicting_label_groups:,} groups of identical images carry different "
        "labels: no model can get all of them right."
    )


def show_groups(title: str, groups) -> None:
    if not groups:
        return
    with st.expander(title):
        st.dataframe(
            [
                {
                    "splits": ", ".join(g.splits),
                    "labels": ", ".join(g.labels),
                    "files": ", ".join(g.sources),
                }
                for g in groups
            ],
            width="stretch",
            hide_index=True,
        )


show_groups("Examples of images in more than one split", report.cross_split_examples)
show_groups("Examples of identical images with different labels", report.conflict_examples)
if report.near_blank_examples:
    with st.expander(f"Near-blank images ({report.near_blank})"):
        st.code("\n".join(report.near_blank_examples))

st.download_button(
    "Audit report (JSON)",
    json.dumps(report.to_dict(), indent=2),
    "dataset-audit.json",
    "application/json",
    on_click="ignore",
)
