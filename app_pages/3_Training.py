"""Training page: train a model in the background, follow it live, and make it the app's model."""

from __future__ import annotations

import streamlit as st

from emotion import registry
from emotion.app import formatting, jobs, ui
from emotion.config import MODEL_FILE
from emotion.plots import confusion_figure
from emotion.training import TrainConfig

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

# ---------------------------------------------------------------- settings

defaults = jobs.TRAIN_DEFAULTS
with st.container(border=True):
    st.subheader("Data")
    data = ui.data_source_picker("data_path", "Where the faces come from", kaggle=True,
                                 label_visibility="collapsed")

    st.subheader("Settings")
    c1, c2, c3 = st.columns(3)
    optimizer = c1.selectbox("Optimizer", ["Adam", "SGD"], help="SGD uses momentum 0.9 (Nesterov).")
    epochs = c2.number_input(
        "Epochs", 1, 300, defaults.epochs, key="epochs",
        help="Early stopping may end the run sooner.",
    )
    batch_sizes = [16, 32, 64, 128, 256]
    batch_size = c3.selectbox("Batch size", batch_sizes, index=batch_sizes.index(defaults.batch_size))
    c4, c5, c6 = st.columns(3)
    lr = c4.number_input(
        "Learning rate",
        1e-5,
        1.0,
        jobs.default_learning_rate(optimizer),
        format="%.5f",
        key=f"lr-{optimizer}",
        help="Start value; it decays by a cosine schedule.",
    )
    minutes = c5.number_input(
        "Time limit, minutes (0: none)", 0, 24 * 60, int(defaults.minutes or 0), key="minutes",
        help="Train for as many epochs as fit in this time (at most the epochs above); the "
        "learning-rate schedule is fitted to them once the second epoch has been timed.",
    )
    augment = c6.checkbox("Augmentation (flip, shift, rotation, zoom)", value=defaults.augment)
    average = c5.number_input(
        "Average the weights of the last % of epochs (0: off)", 0, 100,
        round(defaults.average * 100), step=5, key="average",
        help="Stochastic weight averaging: the learning rate holds over these epochs and their "
        "weights are averaged; the average is kept if it scores best on validation.",
    )

    start = st.button(
        "Start training", type="primary", key="start", disabled=bool(job and job.active)
    )
    if start:
        if not data:
            st.error("Choose the data first: a path, an uploaded fer2013.csv, or kagglehub.")
        elif data != "kaggle" and (problem := ui.missing_data(data)):
            st.error(problem)
        else:
            config = TrainConfig(
                data=data,
                optimizer=optimizer.lower(),
                epochs=int(epochs),
                batch_size=int(batch_size),
                lr=float(lr),
                augment=augment,
                minutes=float(minutes) or None,
                average=average / 100,
            )
            try:
                job = manager.start(config)
            except (jobs.JobError, OSError) as exc:
                st.error(formatting.start_problem(exc))

# ---------------------------------------------------------------- the run


def history_charts(job: jobs.Job) -> None:
    frame = formatting.history_frame(job.history)
    if frame is None:
        st.caption("Loss and accuracy curves appear after the first epoch.")
        return
    left, right = st.columns(2)
    left.markdown("**Loss**")
    left.line_chart(frame[[c for c in ("loss", "val_loss") if c in frame]])
    right.markdown("**Accuracy**")
    right.line_chart(frame[[c for c in ("accuracy", "val_accuracy") if c in frame]])


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
    if job.active and st.button("Cancel training", key="cancel"):
        job.cancel()
        st.info("Stopping after the current batch...")
    history_charts(job)


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
        st.warning("Training was cancelled: nothing was written to the app's model.")
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

        target = registry.app_model_path()
        st.markdown(
            f"**Use this model**: copies it to `{target}`; the current one is kept in "
            f"`{registry.backup_dir(target)}`."
        )
        if st.button("Use this model", type="primary", key="promote"):
            try:
                registry.promote(job.run_dir, target)
            except (registry.PromotionError, OSError) as exc:
                st.error(formatting.model_file_problem(exc))
            else:
                ui.reload_recognizer()  # every page now loads the new model
                st.session_state["model_message"] = (
                    f"This run's model is now the app's model ({target})."
                )
                st.rerun()

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
        f"`{info.shown_path}`, saved {info.modified:%Y-%m-%d %H:%M}, test accuracy {info.accuracy_text}."
    )
else:
    st.write(f"No model at `{info.shown_path}` yet.")
if registry.has_backup():
    backup = registry.model_info(registry.backup_dir() / MODEL_FILE)
    st.caption(
        f"Previous model: saved {backup.modified:%Y-%m-%d %H:%M}, test accuracy "
        f"{backup.accuracy_text}."
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
