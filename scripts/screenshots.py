"""Screenshots of the app's pages for the README (headless Chromium): the one way to refresh them.

    apt-get install -y chromium chromium-driver && pip install selenium
    python scripts/screenshots.py [--out docs/screenshots] [--data PATH] [--only webcam,...]

Starts the app on a free port, drives each page as a user would (the training page trains for
two epochs on the FER2013 sample into a temporary folder, so models/ is left alone; the webcam
page gets Chromium's fake camera playing the astronaut photo), and writes home.png, photo.png,
webcam.png, training.png and dataset.png.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from emotion.config import SHARED_FER2013
from emotion.labels import EMOTIONS

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(port: int, runs_dir: str):
    env = {**os.environ, "EMOTION_RUNS_DIR": runs_dir, "EMOTION_DISABLE_TRAINING": ""}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("streamlit did not start within 90 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(20)


def browser(width: int = 1400, height: int = 1800, camera: Path | None = None):
    """Headless Chromium; with `camera`, a y4m file its fake camera plays (no permission asked)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    args = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars",
            f"--window-size={width},{height}"]
    if camera is not None:
        args += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-video-capture={camera}",
                 "--autoplay-policy=no-user-gesture-required"]
    for arg in args:
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wait_for_text(driver, text: str, timeout: float = 120) -> None:
    """Wait until `text` is on the page and Streamlit has stopped running the script."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = driver.find_element(By.TAG_NAME, "body").text
        running = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
        # While a script runs, Streamlit's status widget offers "Stop".
        if text in body and not any(el.is_displayed() and "Stop" in el.text for el in running):
            time.sleep(1.5)  # charts and images finish drawing
            return
        time.sleep(0.5)
    raise TimeoutError(f"{text!r} did not appear within {timeout:.0f} s")


def click_text(driver, text: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, f"//*[normalize-space(text())={text!r}]").click()


def fill(driver, label: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, f'input[aria-label="{label}"]')
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(value, Keys.ENTER)
    time.sleep(1)


def still_camera(folder: Path) -> Path:
    """A y4m of the astronaut photo held still at 640x480, for Chromium's fake camera."""
    import cv2
    from skimage import data

    from emotion.clips import write_y4m

    frame = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (640, 480),
                       interpolation=cv2.INTER_AREA)
    path = folder / "astronaut.y4m"
    write_y4m([frame] * 15, path, fps=15)
    return path


def webcam_shot(url: str, out: Path, camera: Path) -> None:
    """The Webcam page streaming the fake camera, spoken feedback on, as the README shows it."""
    from selenium.webdriver.common.by import By

    driver = browser(1400, 1000, camera)
    try:
        driver.get(f"{url}/Webcam")
        wait_for_text(driver, "Speak the emotion aloud")
        driver.switch_to.frame(driver.find_element(By.CSS_SELECTOR, 'iframe[title*="webrtc"]'))
        deadline = time.monotonic() + 60
        while not (buttons := [b for b in driver.find_elements(By.TAG_NAME, "button")
                               if b.text.strip().upper() == "START"]):
            if time.monotonic() > deadline:
                raise TimeoutError("the webcam page offered no START button within 60 s")
            time.sleep(0.5)
        buttons[0].click()
        driver.switch_to.default_content()
        click_text(driver, "Speak the emotion aloud")
        # The live panel shows the main face's emotion once frames come back labelled.
        deadline = time.monotonic() + 120
        while not any(v.text.strip() in EMOTIONS for v in
                      driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricValue"]')):
            if time.monotonic() > deadline:
                raise TimeoutError("no labelled face on the webcam page within 120 s")
            time.sleep(0.5)
        time.sleep(5)  # FPS settles and the timeline gets a few seconds
        driver.save_screenshot(str(out / "webcam.png"))
    except Exception:
        driver.save_screenshot(str(Path(tempfile.gettempdir()) / "screenshot-failure.png"))
        raise
    finally:
        driver.quit()


SHOTS = ("home", "photo", "webcam", "training", "dataset")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument(
        "--data",
        default=str(SHARED_FER2013 / "fer2013-sample.csv"),
        help="what the training page trains on (two epochs)",
    )
    parser.add_argument("--only", default=",".join(SHOTS),
                        help=f"which screenshots, separated by commas (default: {','.join(SHOTS)})")
    args = parser.parse_args()
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    if unknown := set(only) - set(SHOTS):
        parser.error(f"--only {args.only}: no such screenshot {sorted(unknown)}; choose from {SHOTS}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as runs, streamlit_server(free_port(), runs) as url:
        if "webcam" in only:
            webcam_shot(url, out, still_camera(Path(runs)))
        driver = browser()
        try:
            if "home" in only:
                driver.get(url)
                wait_for_text(driver, "Test accuracy")
                driver.save_screenshot(str(out / "home.png"))

            if "photo" in only:
                driver.get(url)  # as a first visit goes: Home's button opens a group photo
                wait_for_text(driver, "Try a sample photo")
                click_text(driver, "Try a sample photo")
                wait_for_text(driver, "Results (JSON)")
                driver.save_screenshot(str(out / "photo.png"))

            if "training" in only:
                driver.set_window_size(1400, 2300)
                driver.get(f"{url}/Training")
                wait_for_text(driver, "Start training")
                fill(driver, "Path", args.data)
                fill(driver, "Epochs", "2")
                click_text(driver, "Start training")
                wait_for_text(driver, "Confusion matrix", timeout=600)
                driver.save_screenshot(str(out / "training.png"))

            if "dataset" in only:
                driver.set_window_size(1400, 2600)
                driver.get(f"{url}/Dataset")
                wait_for_text(driver, "Duplicates and leakage", timeout=300)
                driver.save_screenshot(str(out / "dataset.png"))
        except Exception:
            driver.save_screenshot(str(Path(tempfile.gettempdir()) / "screenshot-failure.png"))
            print(
                f"failed; the page as it was: {tempfile.gettempdir()}/screenshot-failure.png",
                file=sys.stderr,
            )
            raise
        finally:
            driver.quit()
    for name in only:
        print(out / f"{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
