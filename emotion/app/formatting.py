"""What the pages show, as tables, charts and sentences: no widgets, no Streamlit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import config
from ..config import MODEL_FILE, UNCERTAIN_BELOW
from ..labels import EMOTIONS, palette
from ..registry import metrics_path, read_metrics

if TYPE_CHECKING:
    from ..evaluate import Evaluation
    from .jobs import Job


def run_description(job: Job) -> str:
    """A training run's settings in one sentence, for the caption under its title."""
    config = job.config
    return (
        f"Into `{job.run_dir}` with {config.optimizer}, {config.epochs} epochs"
        + (f" or {config.minutes:g} minutes, whichever ends first" if config.minutes else "")
        + f", batch {config.batch_size}, learning rate {config.learning_rate:g}, "
        f"augmentation {'on' if config.augment else 'off'}"
        + (f", weights averaged over the last {config.average:.0%} of the epochs"
           if config.average else "")
        + f"; data `{config.data}`"
    )


def choice_text(job: Job) -> str | None:
    """Which model the finished run kept, and each candidate's validation accuracy, in words."""
    try:
        choice = read_metrics(metrics_path(job.run_dir / MODEL_FILE))["model_choice"]
        scores, kept = choice["val_accuracy"], choice["kept"]
    except (KeyError, TypeError):  # no metrics.json, or one written before runs chose a model
        return None
    others = "; ".join(f"{name} {score:.1%}" for name, score in scores.items() if name != kept)
    return (f"Kept: {kept}, validation accuracy {scores[kept]:.1%}"
            + (f" (the other candidates: {others})" if others else "") + ".")


def per_class_frame(evaluation: Evaluation):
    """Precision, recall, F1 and support per emotion as a DataFrame."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "emotion": name,
                "precision": s.precision,
                "recall": s.recall,
                "f1": s.f1,
                "support": s.support,
            }
            for name, s in evaluation.per_class.items()
        ]
    ).set_index("emotion")


def class_counts_frame(per_split_class: dict[str, dict[str, int]]):
    """Images per emotion (rows) and split (columns), in FER2013's order."""
    import pandas as pd

    frame = pd.DataFrame(
        {split: [counts.get(e, 0) for e in EMOTIONS] for split, counts in per_split_class.items()},
        index=pd.Index(EMOTIONS, name="emotion"),
    )
    frame["total"] = frame.sum(axis=1)
    return frame


def probability_chart(probabilities: dict[str, float], height: int = 190):
    """Bars of the seven probabilities on a fixed 0-100% scale, in each emotion's colour."""
    import altair as alt
    import pandas as pd

    frame = pd.DataFrame(
        {
            "emotion": list(EMOTIONS),
            "probability": [float(probabilities.get(e, 0.0)) for e in EMOTIONS],
        }
    )
    return (
        alt.Chart(frame, height=height)
        .mark_bar()
        .encode(
            x=alt.X(
                "probability:Q",
                scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%"),
                title=None,
            ),
            y=alt.Y("emotion:N", sort=list(EMOTIONS), title=None),
            color=alt.Color(
                "emotion:N", scale=alt.Scale(domain=list(EMOTIONS), range=palette()), legend=None
            ),
            tooltip=["emotion", alt.Tooltip("probability:Q", format=".1%")],
        )
    )




# ---------------------------------------------------------------- the Photo page


def face_title(number: int, face) -> str:
    """One face as the Photo page names it: "Face 3: happy 97%", or "Face 3: uncertain (fear 35%)"."""
    if face.uncertain:
        return f"Face {number}: {face.shown_label} ({face.label} {face.confidence:.0%})"
    return f"Face {number}: {face.label} {face.confidence:.0%}"


def faces_frame(faces: list):
    """The Photo page's table: one row per face, numbered as on the photo, with its emotion (or
    "uncertain", naming the likeliest) and the confidence of the likeliest emotion, in %."""
    import pandas as pd

    return pd.DataFrame(
        {
            "face": list(range(1, len(faces) + 1)),
            "emotion": [f"{f.shown_label} (likeliest: {f.label})" if f.uncertain else f.label
                        for f in faces],
            "confidence": [round(100 * float(f.confidence), 1) for f in faces],
        }
    )


# ---------------------------------------------------------------- the Home page


def times_in(share: float) -> tuple[int, int]:
    """A share as "k times in n", in the plainest terms that say it to within 2 points:
    0.671 -> (2, 3), 0.86 -> (6, 7), 0.186 -> (1, 5), 0.95 -> (19, 20); else in 100."""
    share = min(1.0, max(0.0, float(share)))
    for n in (2, 3, 4, 5, 6, 7, 8, 9, 10, 20):
        k = round(share * n)
        if 0 < k < n and abs(k / n - share) <= 0.02 + 1e-9:
            return k, n
    return round(share * 100), 100


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def quality_sentences(metrics: dict | None) -> list[str]:
    """The model's quality in plain words, from its measured metrics.json (nothing when it holds no
    test figures): how often it is right on faces it never saw, the emotions it recognises best and
    worst (by recall), what a photo gets where its test-time views were measured, and, where
    measured and small, that its confidence is calibrated."""
    test = (metrics or {}).get("test")
    if not isinstance(test, dict) or not isinstance(test.get("accuracy"), (int, float)):
        return []
    accuracy = float(test["accuracy"])
    k, n = times_in(accuracy)
    images = test.get("n_images")
    faces = f"{images:,} test faces" if isinstance(images, int) and images > 0 else "its test faces"
    said = [(f"Right about {k} time{'s' if k != 1 else ''} in {n} on faces it has never seen "
             f"({accuracy:.1%} of {faces}).")]

    per_class = test.get("per_class")
    recall = {}
    if isinstance(per_class, dict):
        recall = {name: float(s["recall"]) for name, s in per_class.items()
                  if isinstance(s, dict) and isinstance(s.get("recall"), (int, float))}
    if len(recall) >= 4:
        ranked = sorted(recall, key=recall.get, reverse=True)
        best, worst = ranked[:2], ranked[-2:][::-1]
        said.append(
            f"Best at {_names(best)} ({' and '.join(f'{recall[e]:.0%}' for e in best)} of those "
            f"faces named right), weakest at {_names(worst)} "
            f"({' and '.join(f'{recall[e]:.0%}' for e in worst)})."
        )

    views = (metrics or {}).get("test_tta")
    if isinstance(views, dict) and isinstance(views.get("accuracy"), (int, float)) \
            and views["accuracy"] > accuracy:
        said.append(f"A photo, where each face is checked several ways, gets {views['accuracy']:.1%}.")

    calibration = (metrics or {}).get("calibration")
    ece = None
    if isinstance(calibration, dict) and isinstance(calibration.get("test"), dict):
        ece = calibration["test"].get("ece_after")
    if isinstance(ece, (int, float)) and 0 <= ece <= CALIBRATED_ECE:
        said.append(
            "Its confidence is calibrated: when it says 70%, it is right about 70% of the time "
            f"(expected calibration error {ece:.3f} on the test faces)."
        )
    return said


# Below this expected calibration error on the test faces, the Home page says the confidence is
# calibrated (a 70% answer right about 70% of the time, to within a few points).
CALIBRATED_ECE = 0.05


def model_caption(info, model_path=None) -> str:
    """The Home page's line about the model file: where, how big, when saved, how trained.

    A run started from the weights of the file it then replaced (as the shipped model's cycles
    were, `--init models/emotion_cnn.keras`) says "fine-tuned from the previous model", not that
    it started from itself.
    """
    from pathlib import Path

    about = f"Model file: `{info.shown_path}` ({info.size_mb} MB, saved {info.modified:%Y-%m-%d %H:%M})"
    if info.epochs_run:
        about += f"; trained for {info.epochs_run} epochs on `{info.data_source}`"
        if info.init:
            init = Path(info.init)
            if not init.is_absolute():
                init = config.PROJECT_ROOT / init
            same = init.resolve() == Path(model_path or info.path).resolve()
            about += (", fine-tuned from the previous model" if same
                      else f", starting from the weights of `{info.init}`")
    elif info.averaged:
        about += (f"; the weight average of {info.averaged} trained models (`python -m emotion "
                  "average`: the README says which)")
    if info.sharpened:
        about += ("; then given the layer that sharpens blurred faces (`python -m emotion "
                  "calibrate --sharpen`)")
    return about + "."


HUMAN_CAPTION = (
    "FER2013 is hard even for people: its authors report that humans name the emotion of its "
    "small 48x48 faces correctly about 65% of the time, give or take 5 points. Treat the results "
    "as estimates, not facts about anyone's feelings."
)


def views_help(info) -> str:
    """The Photo page's help for TTA, with the app's model's measured gain where known."""
    text = ("Averages each face's scores over six views of it (mirrored, framed a little tighter "
            "and looser): right a little more often")
    if info.tta_accuracy is not None and info.test_accuracy is not None:
        text += (f" ({info.tta_accuracy:.1%} against {info.test_accuracy:.1%} on "
                 f"{info.test_images or 0:,} test faces)")
    return text + ", about 4 ms more a face."


def _uncertain_caption() -> str:
    return (f"uncertain: the likeliest emotion has under {UNCERTAIN_BELOW:.0%}, too little to name "
            "it; its chart shows how the scores are spread.")


UNCERTAIN_CAPTION = _uncertain_caption()


HISTORY_SERIES = {"loss": "training", "val_loss": "validation",
                  "accuracy": "training", "val_accuracy": "validation"}
HISTORY_COLOURS = ["#1f77b4", "#ff7f0e"]  # training blue, validation orange: told apart at a glance


def history_chart(history: list[dict[str, float]], metric: str, height: int = 220):
    """The training and validation curves of `metric` ("loss" or "accuracy") per epoch, lines
    with a point at every epoch: after one epoch a line alone draws nothing. None when empty."""
    import altair as alt
    import pandas as pd

    columns = [c for c in (metric, f"val_{metric}") if any(c in row for row in history)]
    rows = [{"epoch": int(row["epoch"]), "split": HISTORY_SERIES[c], metric: float(row[c])}
            for row in history for c in columns if c in row]
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    value_format = ".1%" if metric == "accuracy" else ".3f"
    return (
        alt.Chart(frame, height=height)
        .mark_line(point=alt.OverlayMarkDef(size=60, filled=True))
        .encode(
            x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d"), title="epoch",
                    scale=alt.Scale(domainMin=1, nice=False)),
            y=alt.Y(f"{metric}:Q", title=None,
                    axis=alt.Axis(format="%") if metric == "accuracy" else alt.Axis()),
            color=alt.Color("split:N", title=None, legend=alt.Legend(orient="top"),
                            scale=alt.Scale(domain=["training", "validation"],
                                            range=HISTORY_COLOURS)),
            tooltip=["epoch", "split", alt.Tooltip(f"{metric}:Q", format=value_format)],
        )
    )


def comparison_frame(comparison):
    """Both models' accuracy per split, with the number of faces, as a small table."""
    import pandas as pd

    return pd.DataFrame(
        [{"faces": f"{s.n_images:,} {s.split}",
          "this model": f"{s.new_accuracy:.1%}",
          "the app's model": f"{s.app_accuracy:.1%}" if s.app_accuracy is not None else "-"}
         for s in comparison.splits]
    ).set_index("faces")


def calibration_text(metrics: dict | None) -> str | None:
    """The calibration recorded in metrics.json, in plain words, or None when there is none.

    {"temperature": T, "val": {"ece_before", "ece_after", "nll_before", "nll_after", "n"},
    "test": {...}}: the test faces are quoted when present (no part in fitting T)."""
    calibration = (metrics or {}).get("calibration")
    if not isinstance(calibration, dict):
        return None
    for split, name in (("test", "test"), ("val", "validation")):
        part = calibration.get(split)
        if isinstance(part, dict) and isinstance(part.get("ece_after"), (int, float)):
            break
    else:
        return None
    n = part.get("n")
    faces = f" on {n:,} {name} faces" if isinstance(n, int) else f" on the {name} faces"
    text = (f"How far to trust the confidence: on average, the confidence the model shows is "
            f"{part['ece_after'] * 100:.1f} points away from how often it is right{faces} "
            f"(expected calibration error {part['ece_after']:.3f}")
    if isinstance(part.get("ece_before"), (int, float)):
        text += f"; {part['ece_before']:.3f} before calibration"
    temperature = calibration.get("temperature")
    if isinstance(temperature, (int, float)):
        text += f", temperature {temperature:.2f}"
    return text + ")."


def run_metrics(job: Job) -> dict | None:
    """The finished run's metrics.json."""
    if job.result is None:
        return None
    return read_metrics(job.result.model_path.with_name("metrics.json"))
