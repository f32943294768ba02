"""What the Webcam page shows of a session: the main face's emotion as coloured bands, the
shares of the emotions over time, the summary in a sentence and a table, the colour legend."""

from __future__ import annotations

from html import escape

import altair as alt
import pandas as pd

from ..labels import EMOTIONS, palette
from ..timeline import SHOWN_LABELS

# Heights to give st.altair_chart (axis and legend included): a height set in the chart itself
# left the plot of these charts 1 px high in Streamlit 1.67, and so did a legend under the
# bands, whose legend is therefore legend_html() beside the chart.
TIMELINE_HEIGHT = 100
SHARES_HEIGHT = 280


def timeline_chart(bands) -> tuple:
    """The main face's shown emotion as coloured bands over the session's seconds, as (data,
    Vega-Lite spec) for st.vega_lite_chart.

    A plain spec rather than an Altair chart: Altair validates a chart against the Vega-Lite
    schema on every call, 61 ms of CPU against 5 ms for a spec, and the live panel redraws this
    every second while the camera runs (README, "Live serving").
    """
    frame = pd.DataFrame(
        {
            "start": [b.start_s for b in bands],
            "end": [b.end_s for b in bands],
            "emotion": [b.label for b in bands],
            "seconds": [round(b.seconds, 1) for b in bands],
            "face": "main face",
        }
    )
    spec = {
        "mark": {"type": "rect"},
        "encoding": {
            "x": {"field": "start", "type": "quantitative", "title": "seconds"},
            "x2": {"field": "end"},
            "y": {"field": "face", "type": "nominal", "axis": None},
            "color": {"field": "emotion", "type": "nominal", "legend": None,
                      "scale": {"domain": list(SHOWN_LABELS), "range": palette(SHOWN_LABELS)}},
            "tooltip": [{"field": "emotion", "type": "nominal"},
                        {"field": "start", "type": "quantitative", "format": ".1f"},
                        {"field": "end", "type": "quantitative", "format": ".1f"},
                        {"field": "seconds", "type": "quantitative"}],
        },
    }
    return frame, spec


def shares_chart(series: dict[str, list]):
    """The main face's smoothed probabilities over time, stacked to 100%, one colour per emotion."""
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
    labels = list(SHOWN_LABELS if labels is None else labels)
    chips = (
        f'<span style="white-space:nowrap;margin-right:0.9em">'
        f'<span style="display:inline-block;width:0.8em;height:0.8em;background:{colour};'
        f'border:1px solid #bbb;border-radius:2px;margin-right:0.3em"></span>{escape(label)}</span> '
        for label, colour in zip(labels, palette(labels))
    )
    return f'<div style="font-size:0.85em;line-height:1.8">{"".join(chips)}</div>'
