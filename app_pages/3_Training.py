"""Training page: train a model in the background, follow it live, and make it the app's model
only after it has been scored against the app's model on the same faces."""

from __future__ import annotations

import streamlit as st

from emotion import registry
from emotion.app import formatting, jobs, ui
from emotion.config import MODEL_FILE
from emotion.plots import confusion_figure
from emotion.training import TrainConfig, TrainError, timing

st.set_page_config(page_title="Training · Facial emotion recognition", page_icon="🏋️", layout="wide")
st.title("Train a model")

reason = ui.training_disabled()
if reason:
    st.warning(
        f"Training is turned off on this deployment ({reason}). Models are trained and "
        "promoted by the people who run it; the other pages work as usual."
    )
    st.stop()
if not ui.admin_gate():  # a shared server's administrators only, when the operator set a token
    st.stop()

manager = jobs.MANAGER
job = manager.current
busy = job is not None and job.active

# ---------------------------------------------------------------- settings

defaults = jobs.TRAIN_DEFAULTS
OPTIMIZERS = ["Adam", "SGD"]
BATCH_SIZES = [16, 32, 64, 128, 256]
QUICK, FULL = jobs.QUICK_TEST, jobs.FULL_RUN
SETTINGS = {
    "data_path-source": ui.LOCAL_DATA,
    "data_path": ui.default_data_path(),
    "preset": FULL.name,
    "epochs": defaults.epochs,
    "minutes": int(defaults.minutes or 0),
    "optimizer": {"adam": "Adam", "sgd": "SGD"}[defaults.optimizer],
    "lr-Adam": jobs.default_learning_rate("Adam"),
    "lr-SGD": jobs.default_learning_rate("SGD"),
    "batch_size": defaults.batch_size,
    "augment": defaults.augment,
    "average": round(defaults.average * 100),
}
ui.restore_settings(SETTINGS)  # Streamlit forgets a page's widgets when the user leaves it

with st.container(border=True):
    st.subheader("Data")
    data = ui.data_source_picker("data_path", "Where the faces come from", kaggle=True,
                                 label_visibility="collapsed")

    with st.expander("Advanced: optimizer, learning rate, batch size, averaging"):
        a1, a2 = st.columns(2)
        optimizer = a1.selectbox(
            "Optimizer", OPTIMIZERS, key="optimizer",
            help="How the network's weights are adjusted after each batch of faces. Adam adapts "
            "the step for every weight and is the safe choice; SGD (with momentum) can end a "
            "little better but is fussier about the learning rate.",
        )
        lr = a2.number_input(
            "Learning rate", 1e-5, 1.0, format="%.5f", key=f"lr-{optimizer}",
            help="How big the adjustments are at the start. Too high and the run falls apart "
            "(the loss stops being a number); too low and it learns slowly. It shrinks smoothly "
            "towards the end of the run.",
        )
        batch_size = a1.selectbox(
            "Batch size", BATCH_SIZES, key="batch_size",
            help="How many faces the network looks at before each adjustment. Larger batches "
            "need more memory and take fewer, bigger steps; 64 works well here.",
        )
        average = a2.number_input(
            "Average the weights over the last % of the run (0: off)", 0, 100, step=5,
            key="average",
            help="Keeps the network's weights from the end of each of those epochs and averages "
            "them (stochastic weight averaging), which often scores a little better. The "
            "average is used only if it does better on the validation faces.",
        )
        augment = st.checkbox(
            "Augmentation: flip, shift, turn and zoom the faces a little", key="augment",
            help="Shows the network slightly different copies of each face every epoch, so it "
            "learns faces rather than these particular pictures. Leave it on.",
        )

    # The estimate: a few batches of this network timed on this machine, once per settings.
    speed_key = timing.SpeedKey(batch_size=int(batch_size), blocks=defaults.blocks,
                                augment=bool(augment), optimizer=optimizer.lower())
    speed = timing.known_speed(speed_key) if busy else timing.speed_or_measure(speed_key)
    counts = ui.face_counts(data) if data and data != "kaggle" else None

    def estimated(epochs: int, minutes: float | None, faces: int | None) -> str:
        if counts is None or not counts.get("train"):
            return "time estimated once the data is found"
        if speed is None:
            if timing.measure_failed(speed_key):
                return "this machine could not be timed"
            return "timing this machine..."
        return timing.estimate(speed, faces=counts, epochs=epochs, batch_size=int(batch_size),
                               minutes=minutes, limit=faces).text

    st.subheader("What to run")
    full_epochs = int(st.session_state["epochs"])
    full_minutes = float(st.session_state["minutes"]) or None
    preset = st.radio(
        "What to run", [QUICK.name, FULL.name], key="preset", label_visibility="collapsed",
        format_func=lambda name: (
            f"{QUICK.name}: {QUICK.epochs} epochs on {QUICK.faces:,} faces, to try the settings"
            if name == QUICK.name else f"{FULL.name}: every face, the epochs below"),
        captions=[estimated(QUICK.epochs, None, QUICK.faces),
                  estimated(full_epochs, full_minutes, None)],
    )
    c1, c2 = st.columns(2)
    epochs = c1.number_input(
        "Epochs", 1, 300, key="epochs", disabled=preset == QUICK.name,
        help="How many times the network goes through all the training faces. Early stopping "
        "ends the run sooner when the validation accuracy stops improving.",
    )
    minutes = c2.number_input(
        "Time limit, minutes (0: none)", 0, 24 * 60, key="minutes", disabled=preset == QUICK.name,
        help="Train for as many epochs as fit in this time (at most the epochs on the left); "
        "the learning rate's schedule is fitted to them once the second epoch has been timed.",
    )
    ui.keep_settings(SETTINGS)

    if preset == QUICK.name:
        run_epochs, run_minutes, run_faces = QUICK.epochs, None, QUICK.faces
    else:
        run_epochs, run_minutes, run_faces = int(epochs), float(minutes) or None, None
    estimate = (timing.estimate(speed, faces=counts, epochs=run_epochs, batch_size=int(batch_size),
                                minutes=run_minutes, limit=run_faces)
                if speed is not None and counts and counts.get("train") else None)
    if estimate is not None:
        st.markdown(f"**Estimated time: {estimate.text}**")
        st.caption(
            f"From {timing.TIMED_STEPS} batches of {int(batch_size)} faces timed on this machine "
            f"({speed.step_s:.2f} s a batch), with each epoch's validation and the scoring at "
            "the end, but not loading the data; other work on the machine slows a run down, and "
            "early stopping can end it sooner."
        )

    @st.fragment(run_every=1.0 if timing.measuring(speed_key) else None)
    def wait_for_timing() -> None:
        """Redraws the page once the machine has been timed."""
        if speed is None and not busy and not timing.measuring(speed_key) and (
                timing.known_speed(speed_key) is not None):
            st.rerun()
        if timing.measuring(speed_key):
            st.caption("Timing a few batches of this network on this machine, to estimate how "
                       "long the run takes (once for these settings)...")

    wait_for_timing()

    start = st.button("Start training", type="primary", key="start", disabled=busy)
    if start:
        if not data:
            st.error("Choose the data first: a path, an uploaded fer2013.csv, or kagglehub.")
        elif data != "kaggle" and (problem := ui.missing_data(data)):
            st.error(problem)
        else:
            try:
                config = TrainConfig(
                    data=data,
                    optimizer=optimizer.lower(),
                    epochs=run_epochs,
                    batch_size=int(batch_size),
                    lr=float(lr),
                    augment=bool(augment),
                    minutes=run_minutes,
                    average=average / 100,
                )
                manager.start(config, faces=run_faces, app_model=registry.app_model_path(),
                              estimate_s=estimate.seconds if estimate else None)
            except (TrainError, jobs.JobError, OSError) as exc:
                st.error(formatting.start_problem(exc))
            else:
                st.rerun()  # drawn again with "Start training" off while the run goes

# ---------------------------------------------------------------- the run


def history_charts(job: jobs.Job) -> None:
    if not job.history:
        st.caption("Loss and accuracy curves appear after the first epoch.")
        return
    left, right = st.columns(2)
    for column, metric, title in ((left, "loss", "Loss"), (right, "accuracy", "Accuracy")):
        chart = formatting.history_chart(job.history, metric)
        if chart is not None:
            column.markdown(f"**{title}** per epoch")
            column.altair_chart(chart, width="stretch")


@st.fragment(run_every=1.0 if job is not None and job.active else None)
def live(job: jobs.Job) -> None:
    """Redrawn every second while the run goes; a full rerun when it ends shows the results."""
    if not job.active:
        if st.session_state.get("was_running"):
            st.session_state["was_running"] = False
            st.rerun()
    else:
        st.session_state["was_running"] = True
    st.progress(job.fraction, text=job.status_text)
    if job.active and not job.stopping:
        if st.button("Cancel training", key="cancel"):
            job.cancel()
            st.rerun(scope="fragment")  # at once: the bar says "stopping..."
    history_charts(job)


def promotion(job: jobs.Job) -> None:
    """The comparison with the app's model, then "Use this model": the primary button for a
    model at least as good, a deliberate second step for a worse one."""
    target = registry.app_model_path()
    if registry.is_app_model(job.run_dir, target):
        st.caption("This run's model is the app's model.")
        return
    comparison = job.comparison
    if comparison is not None and not comparison.is_current(target):
        with st.spinner("The app's model changed since this run ended: scoring both again on "
                        "the same faces..."):
            try:
                comparison = job.compare_again(target)
            except (OSError, ValueError) as exc:
                st.error(f"The two models could not be compared again: {exc}")
    st.markdown("**This model against the app's model**, on the same faces")
    deliberate = False
    if comparison is None:
        st.warning(
            "This model could not be compared with the app's model"
            + (f" ({job.comparison_error})" if job.comparison_error else "")
            + ", so nothing says it is as good."
        )
        deliberate = True
    elif not comparison.app_scored:
        st.info(f"{comparison.verdict} There is no working app's model to protect.")
    elif comparison.worse:
        st.warning(
            f"{comparison.verdict} Using it would make every page less accurate; keep the "
            "app's model unless you have a reason to replace it."
        )
        deliberate = True
    else:
        st.success(comparison.verdict)
    if comparison is not None and comparison.splits:
        st.dataframe(formatting.comparison_frame(comparison), width="stretch")

    st.caption(
        f"Use this model: copies it to `{registry.model_info(target).shown_path}`; the current "
        f"one is kept as the previous model and can be restored below."
    )
    if deliberate:
        understood = st.checkbox(
            "I understand that this model may be worse than the app's model, and I want to "
            "use it anyway", key="promote-anyway")
        clicked = st.button("Use this model anyway", type="secondary", key="promote",
                            disabled=not understood)
    else:
        clicked = st.button("Use this model", type="primary", key="promote")
    if clicked:
        try:
            registry.promote(job.run_dir, target, comparison=comparison)
        except (registry.PromotionError, OSError) as exc:
            st.error(formatting.model_file_problem(exc))
        else:
            ui.reload_recognizer()  # every page now loads the new model
            st.session_state["model_message"] = (
                f"This run's model is now the app's model ({registry.model_info(target).shown_path})."
            )
            st.rerun()


if job is not None:
    st.divider()
    st.subheader(f"Run {job.run_dir.name}")
    st.caption(formatting.run_description(job))
    live(job)

    if job.state == jobs.JobState.FAILED:
        st.error(f"Training failed: {job.error}")
        if job.details:
            with st.expander("Technical details"):
                st.code(job.details)
    elif job.state == jobs.JobState.CANCELLED:
        st.warning("Training was cancelled where the bar stopped; nothing was written to the "
                   "app's model.")
    elif job.state == jobs.JobState.DONE and job.evaluation is not None:
        evaluation, split = job.evaluation, job.evaluated_on
        m1, m2, m3 = st.columns(3)
        m1.metric(f"Accuracy ({split})", f"{evaluation.accuracy:.1%}")
        m2.metric(f"Macro-F1 ({split})", f"{evaluation.macro_f1:.3f}")
        m3.metric("Epochs run", f"{len(job.history)} in {job.result.train_seconds:.0f} s")
        if split != "test":
            st.info(
                "The data has no test split, so these scores are on the validation split, "
                "which also chose the best epoch: expect the true accuracy to be a bit lower."
            )
        if choice := formatting.choice_text(job):
            st.caption(choice)

        promotion(job)

        left, right = st.columns([3, 2])
        with left:
            st.markdown(
                f"**Confusion matrix** on {evaluation.n_images} {split} images "
                "(rows: true emotion; colour: share of that row)"
            )
            st.pyplot(confusion_figure(evaluation.confusion_matrix), clear_figure=True)
        with right:
            st.markdown("**Per class**")
            st.dataframe(formatting.per_class_frame(evaluation), width="stretch")
        if calibration := formatting.calibration_text(formatting.run_metrics(job)):
            st.markdown("**Confidence**")
            st.write(calibration)
        reliability = job.result.model_path.with_name("reliability.png")
        if reliability.is_file():
            st.image(str(reliability), caption="Reliability: confidence shown against how often "
                     "the model was right (on the diagonal: trustworthy)", width=480)

    if not job.active and st.button("Clear this run from the page", key="clear"):
        manager.clear()
        st.rerun()

# ---------------------------------------------------------------- the app's model

st.divider()
st.subheader("The app's model")
if message := st.session_state.pop("model_message", None):
    st.success(message)
info = registry.model_info()
if info.exists:
    st.write(
        f"`{info.shown_path}`, saved {info.modified:%Y-%m-%d %H:%M}, "
        f"{info.accuracy_label.lower()} {info.accuracy_text}."
    )
else:
    st.write(f"No model at `{info.shown_path}` yet.")
if registry.has_backup():
    backup = registry.model_info(registry.backup_dir() / MODEL_FILE)
    st.caption(
        f"Previous model: saved {backup.modified:%Y-%m-%d %H:%M}, "
        f"{backup.accuracy_label.lower()} {backup.accuracy_text}."
    )
    if st.button("Restore previous model", key="restore"):
        try:
            registry.restore()
        except (registry.PromotionError, OSError) as exc:
            st.error(formatting.model_file_problem(exc))
        else:
            ui.reload_recognizer()
            st.session_state["model_message"] = (
                "The previous model is back; the one it replaced is now the backup."
            )
            st.rerun()
