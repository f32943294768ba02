"""Real WebRTC sessions against the app as deployed: K headless Chromium browsers, each with its own
profile and a fake camera playing its own moving clip, on the Webcam page of `streamlit run app.py`
(with the shipped .streamlit/config.toml), and what the server process spends on them.

    python scripts/bench_webrtc.py [--browsers 1,2,3] [--seconds 30] [--profile]
        [--streamlit-arg=--server.fileWatcherType=auto ...] [--starts 20]

For each K it reports, over a steady window that opens a few seconds after the last session's first
frame: the server's CPU time (user + system of the `streamlit` process and its children, from
psutil) per frame the sessions processed, the frames processed a second in each session, the time
from pressing Start to the session's first annotated frame, the camera's resolution and rate as
Chromium sent them, and where the server's time goes. The split comes from two sources: the frame
callback's own timers (conversion from the decoded frame, `LiveProcessor.process`, conversion back),
and, with --profile, a sampling profile of the server (py-spy, `pip install py-spy`) whose samples
are sorted into receive+decode, conversions, process, drawing, encode+send, the page's reruns, the
file watcher and the rest, then scaled to the measured CPU time.

--starts N instead opens N fresh browsers one after another against one server (a fresh server
each time with --fresh-server), presses Start in each, and reports how long each took to show its
first annotated frame; the server's log, with aiortc's and aioice's debug messages (ICE, DTLS),
goes to --log-dir.

Browsers and server share this machine's cores: the server's CPU time per frame is the figure that
says how many viewers a core serves; the frame rates also depend on what else runs (the load
average is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emotion.app.webrtc_probe import (  # noqa: E402
    PEER_CONNECTION_HOOK_JS, RTP_STATS_JS, camera_flags)
from emotion.clips import astronaut_clip, moving_clip, write_y4m  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FRAME_SIZE = (640, 480)

# Logging for aiortc and aioice inside the server, by a sitecustomize on its PYTHONPATH: the app's
# code stays as deployed.
SITECUSTOMIZE = """
import logging, os
path = os.environ.get("BENCH_WEBRTC_LOG")
if path:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"))
    for name in ("aiortc", "aioice", "streamlit_webrtc"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clip(kind: int) -> list[np.ndarray]:
    """Session k's camera: a different moving clip for each of the first three sessions."""
    if kind % 3 == 0:
        return astronaut_clip(frames=150, size=FRAME_SIZE)
    if kind % 3 == 1:  # the astronaut mirrored, her face on the other side, another phase
        photo = cv2.flip(cv2.imread(str(ROOT / "images" / "astronaut.jpg")), 1)
        frames = list(moving_clip(photo, 150, FRAME_SIZE, focus=(0.57, 0.3)))
        return frames[60:] + frames[:60]
    # two faces: the pair photo padded to 4:3 so that both stay in view
    pair = cv2.imread(str(ROOT / "images" / "astronaut-pair.jpg"))
    pad = (pair.shape[1] * 3 // 4 - pair.shape[0]) // 2
    pair = cv2.copyMakeBorder(pair, pad, pad, 0, 0, cv2.BORDER_REPLICATE)
    return list(moving_clip(pair, 150, FRAME_SIZE, focus=(0.5, 0.45)))


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    stats_dir: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}/Webcam"

    def cpu_s(self) -> float:
        import psutil

        p = psutil.Process(self.proc.pid)
        total = 0.0
        for q in [p, *p.children(recursive=True)]:
            try:
                t = q.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_server(work: Path, port: int, extra: list[str], webrtc_log: Path | None) -> Server:
    """`streamlit run app.py` as the README says (the repository's config.toml applies)."""
    stats_dir = work / "stats"
    stats_dir.mkdir(exist_ok=True)
    site = work / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, "EMOTION_LIVE_STATS": str(stats_dir), "EMOTION_TTS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    if webrtc_log is not None:
        env["BENCH_WEBRTC_LOG"] = str(webrtc_log)
    log = work / "streamlit.log"
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", *extra]
    with log.open("a") as out:  # appended: --fresh-server starts several servers
        out.write(f"--- {time.strftime('%H:%M:%S')} {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(proc, port, stats_dir, log)
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return server
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise SystemExit(f"streamlit did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def open_browser(profile: Path, y4m: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", *camera_flags(y4m),
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-dev-shm-usage", "--window-size=1400,1000",
                 f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PEER_CONNECTION_HOOK_JS})
    return driver


def open_page(driver, url: str) -> None:
    """The Webcam page, loaded, with the driver inside the webrtc iframe and START ready."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    iframe = WebDriverWait(driver, 180).until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, 'iframe[title*="webrtc"]')))
    driver.switch_to.frame(iframe)
    WebDriverWait(driver, 60).until(EC.element_to_be_clickable(
        (By.XPATH, "//button[translate(normalize-space(.), 'start', 'START')='START']")))


def press_start(driver) -> float:
    from selenium.webdriver.common.by import By

    button = driver.find_element(
        By.XPATH, "//button[translate(normalize-space(.), 'start', 'START')='START']")
    clicked = time.time()
    button.click()
    return clicked


def rtp(driver) -> dict:
    try:
        return driver.execute_async_script(RTP_STATS_JS) or {}
    except Exception:  # noqa: BLE001 - a report, never a reason to stop
        return {}


def read_json(path: Path) -> tuple[dict, float] | None:
    try:
        with path.open() as f:
            return json.loads(f.read()), os.fstat(f.fileno()).st_mtime
    except (OSError, ValueError):
        return None


def wait_new_session(stats_dir: Path, known: set[Path], timeout: float) -> Path | None:
    """The stats file of the session that starts now: the first file in the folder not in `known`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [p for p in stats_dir.glob("session-*.json") if p not in known]
        if new:
            return min(new, key=lambda p: p.stat().st_mtime)
        time.sleep(0.02)
    return None


def first_frame_time(path: Path) -> float:
    """When the session processed its first frame: its file's creation (first write)."""
    # The stats file's thread writes it within 20 ms of the first processed frame.
    return path.stat().st_mtime


# How a sample of the server's stacks is sorted, leaf first: the first rule a frame matches wins.
CATEGORIES = [
    ("drawing", ("emotion/draw.py",)),
    ("process", ("emotion/live.py", "emotion/follow.py", "emotion/faces.py", "emotion/runtime.py",
                 "emotion/recognizer.py", "emotion/preprocess.py")),
    ("the benchmark's stats file", ("emotion/files.py", "StatsFile.update")),
    # what the callback runs itself is the two conversions (OpenCV's cvtColor shows as its line)
    ("conversions", ("to_ndarray", "from_ndarray", "reformat", "on_frames (emotion/app/webrtc.py")),
    ("receive+decode", ("decode (aiortc", "rtcrtpreceiver.py", "jitterbuffer.py")),
    ("encode+send", ("encode (aiortc", "rtcrtpsender.py", "_packetize")),
    ("network (ICE, DTLS, SRTP)", ("aioice/", "rtcdtlstransport.py", "rtcicetransport.py",
                                   "rtcsctptransport.py")),
    ("file watcher", ("watcher", "watchdog")),
    ("page reruns", ("script_runner.py", "exec_code.py", "app_pages/", "altair", "vega",
                     "streamlit/elements", "streamlit/runtime/")),
    ("streamlit-webrtc", ("streamlit_webrtc/",)),
]


# Leaves that wait rather than work: py-spy --nonblocking cannot always tell a waiting thread from a
# running one, and these samples would otherwise be scaled up into CPU time.
WAITING = ("EpollSelector.select", "select (selectors.py", "Condition.wait", "wait (threading.py",
           "_worker (concurrent/futures/thread.py:81)", "get (queue.py", "sleep",
           "polling_path_watcher.py:90)")


def categorise(stack: str) -> str | None:
    """The category of one sampled stack, None for a thread that was waiting."""
    frames = stack.split(";")
    if any(w in frames[-1] for w in WAITING):
        return None
    for frame in reversed(frames):
        for name, needles in CATEGORIES:
            if any(n in frame for n in needles):
                return name
    return "rest"


def profile_split(raw: Path) -> dict[str, int]:
    counts: Counter = Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            name = categorise(stack)
            if name is not None:
                counts[name] += int(n)
    return dict(counts)


@dataclass
class Session:
    driver: object
    clip: int
    clicked: float = 0.0
    stats: Path | None = None
    first_s: float | None = None
    t0: tuple[dict, float] | None = None
    t1: tuple[dict, float] | None = None
    rtp0: dict = field(default_factory=dict)
    rtp1: dict = field(default_factory=dict)


def rate(a: dict, b: dict, kind: str, counter: str) -> float | None:
    try:
        return (b[kind][counter] - a[kind][counter]) / ((b[kind]["timestamp"] - a[kind]["timestamp"]) / 1000)
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def run_k(server: Server, k: int, work: Path, seconds: float, warmup: float, profile: bool) -> dict:
    sessions = []
    for i in range(k):
        y4m = work / f"clip-{i}.y4m"
        if not y4m.exists():
            write_y4m(clip(i), y4m, fps=30)
        driver = open_browser(work / f"profile-{k}-{i}", y4m)
        sessions.append(Session(driver, i))
    try:
        for s in sessions:
            open_page(s.driver, server.url)
        for s in sessions:  # one after another: each session's first frame is its own
            known = set(server.stats_dir.glob("session-*.json"))
            s.clicked = press_start(s.driver)
            s.stats = wait_new_session(server.stats_dir, known, timeout=60)
            if s.stats is not None:
                s.first_s = first_frame_time(s.stats) - s.clicked
        time.sleep(warmup)
        load0 = os.getloadavg()
        for s in sessions:
            s.rtp0 = rtp(s.driver)
        cpu0, wall0 = server.cpu_s(), time.time()
        for s in sessions:
            s.t0 = read_json(s.stats) if s.stats else None
        spy = None
        if profile:
            raw = work / f"profile-k{k}.txt"
            spy = subprocess.Popen(["py-spy", "record", "--pid", str(server.proc.pid), "--duration",
                                    str(int(seconds)), "--rate", "97", "--format", "raw",
                                    "--nonblocking", "--output", str(raw)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(seconds)
        for s in sessions:
            s.t1 = read_json(s.stats) if s.stats else None
        cpu1, wall1 = server.cpu_s(), time.time()
        for s in sessions:
            s.rtp1 = rtp(s.driver)
        load1 = os.getloadavg()
        if spy is not None:
            spy.wait(60)
    finally:
        for s in sessions:
            try:
                s.driver.quit()
            except Exception:  # noqa: BLE001
                pass
    frames = 0
    per = []
    path_totals: Counter = Counter()
    for s in sessions:
        if s.t0 is None or s.t1 is None:
            per.append({"clip": s.clip, "first_s": s.first_s, "fps": 0.0})
            continue
        (a, ta), (b, tb) = s.t0, s.t1
        n = b["frames"] - a["frames"]
        frames += n
        for key in ("to_array_ms", "process_ms", "to_frame_ms", "frames_in"):
            path_totals[key] += b.get("path", {}).get(key, 0) - a.get("path", {}).get(key, 0)
        out = s.rtp1.get("outbound-rtp", {})
        faces = sum(b["labels"].values()) - sum(a["labels"].values())
        with_faces = b["frames_with_faces"] - a["frames_with_faces"]
        per.append({"clip": s.clip, "first_s": s.first_s, "fps": n / (tb - ta) if tb > ta else 0.0,
                    "face_share": with_faces / n if n else 0.0,
                    "faces_per_frame": faces / with_faces if with_faces else 0.0,
                    "labels": b["labels"], "camera_fps": rate(s.rtp0, s.rtp1, "outbound-rtp", "framesSent"),
                    "camera": f"{out.get('frameWidth')}x{out.get('frameHeight')}",
                    "back_fps": rate(s.rtp0, s.rtp1, "inbound-rtp", "framesDecoded")})
    cpu = cpu1 - cpu0
    result = {"k": k, "window_s": wall1 - wall0, "cpu_s": cpu, "frames": frames,
              "cpu_ms_per_frame": cpu * 1000 / frames if frames else None,
              "cores": cpu / (wall1 - wall0), "load": [load0[0], load1[0]], "sessions": per,
              "path_ms_per_frame": {key: path_totals[key] / frames for key in
                                    ("to_array_ms", "process_ms", "to_frame_ms")} if frames else {},
              "frames_in": path_totals["frames_in"]}
    if profile:
        split = profile_split(work / f"profile-k{k}.txt") if (work / f"profile-k{k}.txt").exists() else {}
        total = sum(split.values())
        result["profile_samples"] = total
        if total and frames:
            result["profile_ms_per_frame"] = {name: cpu * 1000 / frames * n / total
                                              for name, n in sorted(split.items(), key=lambda x: -x[1])}
    return result


def fmt(x, spec=".1f") -> str:
    return "n/a" if x is None else format(x, spec)


def print_results(results: list[dict]) -> None:
    print("\n| browsers | server CPU ms / processed frame | server cores busy | fps per session "
          "(steady) | Start to first annotated frame, s | camera as sent | load average |")
    print("| ---: | ---: | ---: | --- | --- | --- | --- |")
    for r in results:
        fps = ", ".join(fmt(s["fps"]) for s in r["sessions"])
        first = ", ".join(fmt(s["first_s"], ".2f") for s in r["sessions"])
        cams = ", ".join(f"{s.get('camera')} {fmt(s.get('camera_fps'))} fps" for s in r["sessions"])
        print(f"| {r['k']} | {fmt(r['cpu_ms_per_frame'])} | {r['cores']:.2f} | {fps} | {first} | "
              f"{cams} | {r['load'][0]:.1f}-{r['load'][1]:.1f} |")
    print("\nframe callback's own timers, ms per processed frame:")
    for r in results:
        print(f"  K={r['k']}: " + ", ".join(f"{k} {v:.2f}" for k, v in r["path_ms_per_frame"].items())
              + f"; frames handed over {r['frames_in']}, processed {r['frames']}")
    for r in results:
        if "profile_ms_per_frame" in r:
            print(f"\nwhere the server's CPU goes, K={r['k']} ({r['profile_samples']} samples, "
                  "ms per processed frame):")
            for name, ms in r["profile_ms_per_frame"].items():
                print(f"  {name:28s} {ms:6.2f}")
    for r in results:
        for s in r["sessions"]:
            print(f"  K={r['k']} clip {s['clip']}: faces in {fmt(s.get('face_share'), '.0%')} of frames, "
                  f"{fmt(s.get('faces_per_frame'), '.2f')} faces a frame, labels {s.get('labels')}, "
                  f"annotated video back at {fmt(s.get('back_fps'))} fps")


def one_start(server: Server, profile: Path, y4m: Path, hold_s: float, n: int) -> float | None:
    """A fresh browser presses Start: seconds to the session's first processed frame, or None."""
    driver = open_browser(profile, y4m)
    try:
        open_page(driver, server.url)
        known = set(server.stats_dir.glob("session-*.json"))
        clicked = press_start(driver)
        stats = wait_new_session(server.stats_dir, known, timeout=20)
        first = None if stats is None else first_frame_time(stats) - clicked
        time.sleep(hold_s)
        frames = (read_json(stats) or ({}, 0))[0].get("frames") if stats else None
        print(f"start {n}: first annotated frame after {fmt(first, '.2f')} s, {frames} frames "
              f"{hold_s:.0f} s later (wall {time.strftime('%H:%M:%S', time.localtime(clicked))})",
              flush=True)
        return first
    finally:
        driver.quit()


def run_starts(server: Server, n: int, work: Path, hold_s: float,
               restart=None) -> list[float | None]:
    """N starts, each in a fresh browser; with `restart` (a function returning a new server), each
    against a fresh server too, as its first visitor."""
    y4m = work / "clip-0.y4m"
    if not y4m.exists():
        write_y4m(clip(0), y4m, fps=30)
    times: list[float | None] = []
    servers = [server]
    try:
        for i in range(n):
            if restart is not None and i > 0:
                servers[-1].stop()
                servers.append(restart())
            times.append(one_start(servers[-1], work / f"start-profile-{i}", y4m, hold_s, i + 1))
    finally:
        if restart is not None:
            servers[-1].stop()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--browsers", default="1,2,3", help="K values, comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0, help="the steady window")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds after the last start")
    parser.add_argument("--port", type=int, default=0, help="the server's port (default: a free one)")
    parser.add_argument("--profile", action="store_true", help="sample the server with py-spy")
    parser.add_argument("--streamlit-arg", action="append", default=[],
                        help="extra `streamlit run` option, e.g. --streamlit-arg=--server.fileWatcherType=auto")
    parser.add_argument("--starts", type=int, default=0, help="N fresh starts instead of the K runs")
    parser.add_argument("--fresh-server", action="store_true",
                        help="with --starts: a new server for every start (its first visitor)")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds each start streams (--starts)")
    parser.add_argument("--log-dir", type=Path, help="keep the server's logs here")
    parser.add_argument("--json", type=Path, help="write the results as JSON too")
    args = parser.parse_args(argv)
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if args.profile and shutil.which("py-spy") is None:
        missing.append("py-spy (pip install py-spy)")
    if missing:
        print(f"error: needs {', '.join(missing)}", file=sys.stderr)
        return 2
    extra = [a for arg in args.streamlit_arg for a in arg.split("=", 1)]
    with tempfile.TemporaryDirectory(prefix="bench-webrtc-") as tmp:
        work = Path(tmp)
        webrtc_log = (args.log_dir / "webrtc.log") if args.log_dir else None
        if args.log_dir:
            args.log_dir.mkdir(parents=True, exist_ok=True)
        server = start_server(work, args.port or free_port(), extra, webrtc_log)
        try:
            print(f"server pid {server.proc.pid}, options {extra or 'none'}, "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
            if args.starts:
                restart = None
                if args.fresh_server:
                    def restart() -> Server:
                        return start_server(work, args.port or free_port(), extra, webrtc_log)
                times = run_starts(server, args.starts, work, args.hold, restart)
                ok = sum(1 for t in times if t is not None and t <= 5.0)
                shown = sorted(t for t in times if t is not None)
                print(f"\n{ok} of {len(times)} starts showed an annotated frame within 5 s; "
                      f"median {fmt(shown[len(shown) // 2] if shown else None, '.2f')} s, "
                      f"slowest {fmt(shown[-1] if shown else None, '.2f')} s, "
                      f"none at all: {sum(t is None for t in times)}")
                results: list = [{"starts": times}]
            else:
                results = []
                for k in [int(x) for x in args.browsers.split(",")]:
                    print(f"K={k} ...", flush=True)
                    try:
                        results.append(run_k(server, k, work, args.seconds, args.warmup,
                                             args.profile))
                    except Exception as exc:  # noqa: BLE001 - report the other K values
                        print(f"K={k} failed: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
                print_results(results)
            if args.json:
                args.json.write_text(json.dumps(results, indent=1))
        finally:
            server.stop()
            if args.log_dir:
                shutil.copy(server.log, args.log_dir / "streamlit.log")
                for raw in work.glob("profile-k*.txt"):
                    shutil.copy(raw, args.log_dir / raw.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
