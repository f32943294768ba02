"""The Training page in headless Chromium, as a user meets it: settings that survive a trip to
another page through the menu, a run followed and cancelled, a quick test that ends in the
comparison with the app's model, and the page at 1400 px and at a phone's 420 px (screenshots in
the test's tmp_path)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from browser import MARKS, chromium, running_app
from pages import write_known_speed

pytestmark = MARKS


@pytest.fixture
def app_server(tmp_path: Path, model_path: Path):
    """`streamlit run app.py` with its own copy of the app's model, runs folder and a known
    machine speed (so the page does not time the machine); yields the base URL."""
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy2(model_path, models / model_path.name)
    if model_path.with_name("metrics.json").is_file():
        shutil.copy2(model_path.with_name("metrics.json"), models / "metrics.json")
    cache = tmp_path / "cache"
    write_known_speed(cache)
    env = {"EMOTION_MODEL": str(models / model_path.name),
           "EMOTION_RUNS_DIR": str(tmp_path / "runs"), "EMOTION_CACHE_DIR": str(cache),
           "EMOTION_DISABLE_TRAINING": ""}
    with running_app(tmp_path, env) as (port, _, _):
        yield f"http://localhost:{port}"


@pytest.fixture
def browser(tmp_path: Path):
    with chromium(tmp_path / "chromium-profile") as driver:
        yield driver


def _body(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def _wait_text(driver, text: str, timeout: float = 120) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: text in _body(d))


def _input(driver, label: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'input[aria-label="{label}"]')


def _set(driver, label: str, value: str) -> None:
    from selenium.webdriver.common.keys import Keys

    box = _input(driver, label)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(value, Keys.ENTER)
    time.sleep(1.5)  # the rerun the change starts


def _click(driver, text: str) -> None:
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.XPATH, f'//*[normalize-space(text())="{text}"]')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def _menu(driver, label: str) -> None:
    from selenium.webdriver.common.by import By

    for link in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a'):
        if link.text.splitlines()[-1:] == [label]:
            link.click()
            return
    raise AssertionError(f"no {label!r} in the menu")


def _set_viewport(driver, width: int, height: int) -> None:
    """The page's layout size, as a phone or a desktop window of that size would have it."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    time.sleep(2)  # Streamlit lays the page out again


def _overflow(driver) -> int:
    """How many pixels the page's content is wider than the window (0: no sideways scrolling)."""
    return driver.execute_script("""
        const main = document.querySelector('[data-testid="stMain"]') || document.documentElement;
        return Math.max(document.documentElement.scrollWidth - document.documentElement.clientWidth,
                        main.scrollWidth - main.clientWidth);""")


def _shoot(driver, path: Path, width: int) -> None:
    """The whole page at `width` px: the viewport made as tall as Streamlit's content."""
    _set_viewport(driver, width, 900)
    height = driver.execute_script("""
        const main = document.querySelector('[data-testid="stMain"]');
        return main ? main.scrollHeight : document.body.scrollHeight;""")
    _set_viewport(driver, width, min(int(height) + 50, 8000))
    driver.save_screenshot(str(path))


@pytest.mark.slow
def test_training_page_in_a_browser_keeps_settings_and_compares_at_both_widths(
        app_server, browser, tmp_path, fer_sample_csv):
    browser.get(f"{app_server}/Training")
    _wait_text(browser, "Start training")
    _set(browser, "Path", str(fer_sample_csv))
    _set(browser, "Epochs", "7")
    _wait_text(browser, "for 7 epochs on 350 faces")

    # To Home through the menu and back: the settings are as they were left.
    _menu(browser, "Home")
    _wait_text(browser, "Pages")
    _menu(browser, "Training")
    _wait_text(browser, "Start training")
    assert _input(browser, "Epochs").get_attribute("value") == "7"
    assert _input(browser, "Path").get_attribute("value") == str(fer_sample_csv)

    _shoot(browser, tmp_path / "training-settings-420.png", 420)
    assert _overflow(browser) <= 1, "the settings do not fit 420 px"
    _set_viewport(browser, 1400, 1000)

    # A full run, followed and then cancelled: the bar stops where it was, said once.
    _click(browser, "Start training")
    _wait_text(browser, "epoch 1/7, batch", timeout=600)
    _shoot(browser, tmp_path / "training-running-420.png", 420)
    _set_viewport(browser, 1400, 1000)
    _click(browser, "Cancel training")
    _wait_text(browser, "Training was cancelled", timeout=120)
    _wait_text(browser, "stopped at epoch ", timeout=30)  # after the page's rerun
    body = _body(browser)
    assert "/7, batch " in body.split("stopped at epoch ")[1].splitlines()[0]
    assert body.lower().count("cancel") == 1, body  # the one message, no "Cancel" button left
    _click(browser, "Clear this run from the page")
    _wait_text(browser, "Start training")

    _click(browser, f"{'Quick test'}: 2 epochs on 2,000 faces, to try the settings")
    time.sleep(1.5)
    _click(browser, "Start training")
    # Two epochs of the default network, then the comparison with the shipped model.
    _wait_text(browser, "This model against the app's model", timeout=900)
    body = _body(browser)
    assert "worse than the app's model" in body and "on the same 70 validation faces" in body
    assert "Use this model anyway" in body
    _shoot(browser, tmp_path / "training-results-1400.png", 1400)
    _shoot(browser, tmp_path / "training-results-420.png", 420)
    assert _overflow(browser) <= 1, "the results do not fit 420 px"
