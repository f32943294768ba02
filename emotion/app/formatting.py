"""What the pages show, as tables, charts and sentences: no widgets, no Streamlit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import MODEL_FILE
from ..files import os_error_line
from ..labels import EMOTIONS, palette
from ..registry import metrics_path, read_metrics

if TYPE_CHECKING:
    from ..evaluate import Evaluation
    from .jobs import Job, JobError


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


def file_problem(exc: OSError, failed: str, folder: str) -> str:
    """An OSError as one line for the page: the file, what went wrong, and what to do."""
    return (f"{os_error_line(exc)}: {failed}; check the free space and permissions of {folder}, "
            "then try again")


def start_problem(exc: JobError | OSError) -> str:
    """Why a run could not start, and what to do."""
    if isinstance(exc, OSError):
        return file_problem(exc, "the run's folder could not be made",
                            "the runs folder (EMOTION_RUNS_DIR moves it)")
    return str(exc)


def model_file_problem(exc: Exception) -> str:
    """Why a promotion or a restore failed, and what to do."""
    if isinstance(exc, OSError):
        return file_problem(exc, "the model could not be copied", "the models folder")
    return str(exc)


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


def history_frame(history: list[dict[str, float]]):
    """Per-epoch history as a DataFrame indexed by epoch (for live charts), or None when empty."""
    import pandas as pd

    if not history:
        return None
    return pd.DataFrame(history).set_index("epoch")


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

    from ..labels import palette

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


def timeline_chart(series: dict[str, list], height: int = 260) -> tuple:
    """The Webcam page's timeline as (long-form data, Vega-Lite spec) for st.vega_lite_chart.

    A plain spec rather than st.line_chart: that builds an Altair chart and validates it against
    the Vega-Lite schema on every call, 61 ms of CPU against 5 ms for this (either with 60 or
    1,200 rows), and the live panel redraws the chart every second while the camera runs.
    """
    import pandas as pd

    frame = pd.DataFrame(series).melt("time_s", var_name="emotion", value_name="probability")
    spec = {
        "height": height,
        "mark": {"type": "line"},
        "encoding": {
            "x": {"field": "time_s", "type": "quantitative", "title": "seconds"},
            "y": {"field": "probability", "type": "quantitative", "title": "probability",
                  "scale": {"domain": [0, 1]}},
            "color": {"field": "emotion", "type": "nominal",
                      "scale": {"domain": list(EMOTIONS), "range": palette()}},
        },
    }
    return frame, spec
