"""Special output paths: '-', pipes and /proc fd links are written into, never renamed over; a
symlink to a file has its target replaced, not the link; a folder, a socket or an image-sequence
name is refused before any work. Never the real /dev/stdout: links and FIFOs in tmp_path only."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from emotion.cli import build_parser, main
from emotion.files import write_text_atomic
from emotion.outputs import OutputError, commit, plan_output, staging_file, write_image
from emotion.video import CSV_HEADER


def _read_fifo(path: Path) -> tuple[threading.Thread, list[bytes]]:
    """A reader on the FIFO at `path`, in a thread (a writer waits until one opens it)."""
    got: list[bytes] = []

    def read():
        with open(path, "rb") as f:
            got.append(f.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, got


def test_a_fifo_gets_the_data_streamed_into_it(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    plan = plan_output(str(fifo), "--csv")
    assert plan.stream and not plan.stdout
    tmp = staging_file(plan, ".csv")
    tmp.write_text("frame,label\n0,happy\n")
    reader, got = _read_fifo(fifo)
    commit(plan, tmp)
    reader.join(10)
    assert got == [b"frame,label\n0,happy\n"]
    assert fifo.is_fifo() and not tmp.exists()  # still the pipe; the staging file is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.csv"]


def test_a_link_to_an_open_file_of_a_process_is_written_into_not_replaced(tmp_path):
    """What /dev/stdout is (a link to /proc/self/fd/1): the file behind it keeps its inode and what
    it held; the link stays a link."""
    log = tmp_path / "log.txt"
    log.write_text("earlier output\n")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        link = tmp_path / "stdout-like"
        link.symlink_to(f"/proc/self/fd/{fd}")
        inode = log.stat().st_ino
        plan = plan_output(str(link), "--csv")
        assert plan.stream
        tmp = staging_file(plan, ".csv")
        tmp.write_text("new rows\n")
        commit(plan, tmp)
    finally:
        os.close(fd)
    assert link.is_symlink() and os.readlink(link) == f"/proc/self/fd/{fd}"
    assert log.stat().st_ino == inode and log.read_text() == "earlier output\nnew rows\n"


def test_a_symlink_to_a_file_has_its_target_replaced_not_the_link(tmp_path):
    real = tmp_path / "data" / "table.csv"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "latest.csv"
    link.symlink_to(real)
    plan = plan_output(str(link), "--csv")
    assert plan.target == real.resolve()
    tmp = staging_file(plan)
    tmp.write_text("new\n")
    commit(plan, tmp)
    assert link.is_symlink() and real.read_text() == "new\n"
    # The same through write_atomically, which every file the package writes goes through.
    write_text_atomic(link, "newer\n")
    assert link.is_symlink() and real.read_text() == "newer\n"


def test_a_dangling_symlink_makes_its_target(tmp_path):
    link = tmp_path / "out.csv"
    link.symlink_to(tmp_path / "made.csv")
    assert plan_output(str(link), "--csv").target == (tmp_path / "made.csv").resolve()


def test_a_socket_a_folder_a_loop_and_a_missing_folder_are_refused(tmp_path):
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "s.csv"))
        with pytest.raises(OutputError, match="s.csv is a socket"):
            plan_output(str(tmp_path / "s.csv"), "--csv")
    finally:
        sock.close()
    with pytest.raises(OutputError, match="is a folder"):
        plan_output(str(tmp_path), "--out")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(OutputError, match="symlink loop"):
        plan_output(str(tmp_path / "loop"), "--out")
    with pytest.raises(OutputError, match="the folder .*nowhere does not exist"):
        plan_output(str(tmp_path / "nowhere" / "x.csv"), "--csv")


def test_write_atomically_never_renames_over_a_pipe(tmp_path):
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        write_text_atomic(fifo, "x")
    assert fifo.is_fifo() and sorted(p.name for p in tmp_path.iterdir()) == ["p"]


# ---------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def clip(tmp_path_factory, astronaut_bgr) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    frame = cv2.resize(astronaut_bgr, (320, 320))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 320))
    for i in range(6):
        writer.write(np.roll(frame, 2 * i, axis=1))
    writer.release()
    return path, 6


def test_video_csv_to_a_fifo_and_a_link_to_it(clip, tmp_path, model_path, capsys):
    src, n = clip
    fifo = tmp_path / "rows"
    os.mkfifo(fifo)
    link = tmp_path / "rows-link.csv"
    link.symlink_to(fifo)
    reader, got = _read_fifo(fifo)
    assert main(["video", str(src), "--csv", str(link), "--model", str(model_path)]) == 0
    reader.join(30)
    rows = list(csv.reader(io.StringIO(got[0].decode())))
    assert rows[0] == CSV_HEADER and len(rows) == n + 1
    assert link.is_symlink() and fifo.is_fifo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows", "rows-link.csv"]
    assert json.loads(capsys.readouterr().out)["frames"] == n


def test_video_csv_to_standard_output_keeps_the_summary_apart(clip, model_path, capsysbinary):
    src, n = clip
    assert main(["video", str(src), "--csv", "-", "--model", str(model_path)]) == 0
    captured = capsysbinary.readouterr()
    rows = list(csv.reader(io.StringIO(captured.out.decode())))
    assert rows[0] == CSV_HEADER and len(rows) == n + 1  # nothing but the table on stdout
    summary = json.loads(captured.err.decode().strip().splitlines()[-1])
    assert summary["frames"] == n and summary["csv"] == "-"


def test_video_to_a_fifo_is_a_whole_playable_mp4(clip, tmp_path, model_path):
    src, n = clip
    fifo = tmp_path / "video-pipe"
    os.mkfifo(fifo)
    reader, got = _read_fifo(fifo)
    assert main(["video", str(src), "--out", str(fifo), "--model", str(model_path)]) == 0
    reader.join(30)
    received = tmp_path / "received.mp4"
    received.write_bytes(got[0])
    capture = cv2.VideoCapture(str(received))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == n
    capture.release()


@pytest.mark.parametrize("name, says", [
    ("frame%03d.png", "image sequence"), ("out.jpg", "ending in .mp4 or .avi"),
    ("clip.gif", "ending in .mp4 or .avi"),
])
def test_video_refuses_image_outputs_before_any_work(clip, tmp_path, capsys, name, says):
    src, _ = clip
    code = main(["video", str(src), "--out", str(tmp_path / name), "--model", "/no/model.keras"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and says in err and err.count("\n") == 0
    assert list(tmp_path.iterdir()) == []


def test_video_refuses_two_outputs_to_standard_output(clip, capsys):
    src, _ = clip
    code = main(["video", str(src), "--out", "-", "--csv", "-", "--model", "/no/model.keras"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "name the same file" in err


def test_predict_to_a_fifo_and_to_standard_output(tmp_path, astronaut_bgr, model_path,
                                                  capsysbinary):
    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), astronaut_bgr)
    fifo = tmp_path / "annotated.png"
    os.mkfifo(fifo)
    reader, got = _read_fifo(fifo)
    assert main(["predict", str(photo), "--out", str(fifo), "--model", str(model_path)]) == 0
    reader.join(30)
    picture = cv2.imdecode(np.frombuffer(got[0], np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == astronaut_bgr.shape and fifo.is_fifo()
    capsysbinary.readouterr()

    assert main(["predict", str(photo), "--out", "-", "--json", "--model", str(model_path)]) == 0
    captured = capsysbinary.readouterr()
    picture = cv2.imdecode(np.frombuffer(captured.out, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == astronaut_bgr.shape  # a JPEG, and only it, on stdout
    report = json.loads(captured.err.decode().strip().splitlines()[-1])
    assert report[0]["faces"][0]["label"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotated.png", "astronaut.jpg"]


def test_predict_through_a_symlink_replaces_its_target(tmp_path, astronaut_bgr, model_path):
    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), astronaut_bgr)
    real = tmp_path / "real.jpg"
    real.write_bytes(b"old")
    link = tmp_path / "link.jpg"
    link.symlink_to(real)
    build = build_parser().parse_args(["predict", str(photo), "--out", str(link), "--model",
                                       str(model_path)])
    assert build.func(build) == 0
    assert link.is_symlink() and cv2.imread(str(real)).shape == astronaut_bgr.shape


def test_predict_into_a_folder_never_renames_over_a_link_there(tmp_path, astronaut_bgr,
                                                               model_path):
    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), astronaut_bgr)
    out = tmp_path / "out"
    out.mkdir()
    real = tmp_path / "kept.jpg"
    real.write_bytes(b"old")
    (out / "astronaut_annotated.jpg").symlink_to(real)
    again = tmp_path / "again.jpg"
    cv2.imwrite(str(again), astronaut_bgr)
    assert main(["predict", str(photo), str(again), "--out", str(out), "--model",
                 str(model_path)]) == 0
    assert (out / "astronaut_annotated.jpg").is_symlink()
    assert cv2.imread(str(real)).shape == astronaut_bgr.shape


@pytest.fixture
def file_size_limit():
    """limit(n): files this process writes cannot grow past n bytes (a disk that fills up
    mid-write) until the test ends; Python ignores SIGXFSZ, so writes fail with EFBIG."""
    resource = pytest.importorskip("resource")
    saved = resource.getrlimit(resource.RLIMIT_FSIZE)
    yield lambda n: resource.setrlimit(resource.RLIMIT_FSIZE, (n, saved[1]))
    resource.setrlimit(resource.RLIMIT_FSIZE, saved)


def test_annotated_image_written_atomically(tmp_path, file_size_limit):
    """A write that fails halfway (the disk fills up) leaves the old file whole and no partial one."""
    target = tmp_path / "annotated.jpg"
    noise = np.random.default_rng(0).integers(0, 256, (1200, 1200, 3), dtype=np.uint8)
    assert write_image(target, noise[:100, :100])
    old = target.read_bytes()
    file_size_limit(64 * 1024)  # the noise encodes to about 1 MB
    try:
        written = write_image(target, noise)
    except OSError:  # EFBIG, as ENOSPC would be
        written = False
    assert not written
    assert target.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["annotated.jpg"]
