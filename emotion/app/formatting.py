"""What the pages show, as tables, charts and sentences: no widgets, no Streamlit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import MODEL_FILE
from ..files import os_error_line
from ..labels import EMOTIONS
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


def _shown_scale():
    """Altair's colour scale for shown labels: the seven emotions and "uncertain", one palette."""
    import altair as alt

    from ..labels import palette
    from ..live import SHOWN_LABELS

    return alt.Scale(domain=list(SHOWN_LABELS), range=palette(SHOWN_LABELS))


# Heights to give st.altair_chart (axis and legend included): a height set in the chart itself
# left the plot of these charts 1 px high in Streamlit 1.67, and so did a legend under the
# bands, whose legend is therefore legend_html() beside the chart.
TIMELINE_HEIGHT = 100
SHARES_HEIGHT = 280


def timeline_chart(bands):
    """The main face's shown emotion as coloured bands over the session's seconds."""
    import altair as alt
    import pandas as pd

    frame = pd.DataFrame(
        {
            "start": [b.start_s for b in bands],
            "end": [b.end_s for b in bands],
            "emotion": [b.label for b in bands],
            "seconds": [round(b.seconds, 1) for b in bands],
            "face": "main face",
        }
    )
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("start:Q", title="seconds"),
            x2="end:Q",
            y=alt.Y("face:N", axis=None),
            color=alt.Color("emotion:N", scale=_shown_scale(), legend=None),
            tooltip=["emotion", alt.Tooltip("start:Q", format=".1f"),
                     alt.Tooltip("end:Q", format=".1f"), "seconds"],
        )
    )


def shares_chart(series: dict[str, list]):
    """The main face's smoothed probabilities over time, stacked to 100%, one colour per emotion."""
    import altair as alt
    import pandas as pd

    from ..labels import palette

    frame = pd.DataFrame(series).melt("time_s", var_name="emotion", value_name="probability")
    return (
        alt.Chart(frame)
        .mark_area()
        .encode(
            x=alt.X("time_s:Q", title="seconds"),
            y=alt.Y("probability:Q", stack="normalize", axis=alt.Axis(format="%"), title=None),
            color=alt.Color(
                "emotion:N",
                scale=alt.Scale(domain=list(EMOTIONS), range=palette()),
                legend=alt.Legend(orient="bottom", title=None, columns=4, symbolType="square"),
            ),
            order=alt.Order("emotion_order:Q"),
            tooltip=["emotion", alt.Tooltip("time_s:Q", format=".1f"),
                     alt.Tooltip("probability:Q", format=".0%")],
        )
        .transform_calculate(emotion_order=f"indexof({list(EMOTIONS)!r}, datum.emotion)")
    )


def duration_text(seconds: float) -> str:
    """'1 min 05 s' or '42 s'."""
    whole = int(round(seconds))
    minutes, rest = divmod(whole, 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def session_sentence(summary) -> str:
    """The session in one sentence: its length, how long a face was seen, the main emotion."""
    if summary.face_s <= 0:
        return f"{duration_text(summary.duration_s)}; no face was seen."
    shares = summary.shares
    top, share = next(iter(shares.items()))
    seen = summary.face_s / summary.duration_s if summary.duration_s > 0 else 1.0
    return (f"{duration_text(summary.duration_s)}, a face in view {min(seen, 1.0):.0%} of it; "
            f"the main face looked mostly {top} ({share:.0%} of that time).")


def summary_frame(summary):
    """Share of time and seconds per shown emotion, largest first, as a DataFrame."""
    import pandas as pd

    shares = summary.shares
    return pd.DataFrame(
        {
            "emotion": list(shares),
            "share of time": [f"{s:.0%}" for s in shares.values()],
            "seconds": [round(summary.seconds[label], 1) for label in shares],
        }
    ).set_index("emotion")


def legend_html(labels=None) -> str:
    """The shown labels and their colours as a line of HTML chips that wraps on a narrow screen."""
    from html import escape

    from ..labels import palette
    from ..live import SHOWN_LABELS

    labels = list(SHOWN_LABELS if labels is None else labels)
    chips = (
        f'<span style="white-space:nowrap;margin-right:0.9em">'
        f'<span style="display:inline-block;width:0.8em;height:0.8em;background:{colour};'
        f'border:1px solid #bbb;border-radius:2px;margin-right:0.3em"></span>{escape(label)}</span> '
        for label, colour in zip(labels, palette(labels))
    )
    return f'<div style="font-size:0.85em;line-height:1.8">{"".join(chips)}</div>'
