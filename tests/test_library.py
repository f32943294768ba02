"""The library apart from the app: every module but emotion.app works with no Streamlit at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from emotion.config import PROJECT_ROOT

# Run in a fresh interpreter where Streamlit, streamlit-webrtc and the WebRTC stack cannot be
# imported, as on a machine that installed the package for its library and command line only.
NO_STREAMLIT = r"""
import importlib
import importlib.abc
import json
import pkgutil
import sys

BLOCKED = {"streamlit", "streamlit_webrtc", "aiortc", "av"}


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None


sys.meta_path.insert(0, Blocker())

import cv2
from skimage import data

import emotion

# Every module and subpackage's module of the library, emotion.training's included.
modules = sorted(m.name.removeprefix("emotion.")
                 for m in pkgutil.walk_packages(emotion.__path__, prefix="emotion.")
                 if m.name.split(".")[1] not in ("app", "__main__"))
for name in modules:
    importlib.import_module(f"emotion.{name}")
try:
    importlib.import_module("emotion.app.ui")
    app_blocked = False
except ModuleNotFoundError:
    app_blocked = True

from emotion import EmotionRecognizer, annotate
from emotion.live import LiveProcessor

image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
recognizer = EmotionRecognizer()
faces = recognizer.recognize(image)
drawn = annotate(image, faces)
live = LiveProcessor(recognizer).process(image, t=0.0)
print(json.dumps({
    "modules": modules,
    "app_blocked": app_blocked,
    "labels": [f.label for f in faces],
    "drawn": list(drawn.shape),
    "live": [f.label for f in live.faces],
    "loaded": sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED),
}))
"""


def test_the_library_recognizes_a_photo_with_no_streamlit_installed(model_path):
    done = subprocess.run([sys.executable, "-c", NO_STREAMLIT], cwd=PROJECT_ROOT, text=True,
                          capture_output=True, timeout=300,
                          env={**os.environ, "EMOTION_MODEL": str(model_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["app_blocked"], "the blocker did not block: the test proves nothing"
    assert {"recognizer", "live", "draw", "training.loop", "evaluate", "faces"} <= set(result["modules"])
    assert result["labels"] == ["happy"] and "happy" in result["live"]
    assert result["drawn"] == [512, 512, 3]
    assert result["loaded"] == []
