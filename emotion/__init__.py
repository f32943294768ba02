"""Facial-emotion recognition: Haar face detection and a Keras CNN trained on FER2013.

    from emotion import EmotionRecognizer, read_image
    faces = EmotionRecognizer().recognize(read_image("photo.jpg"))
"""

import os
import sys

# TensorFlow's C++ start-up chatter is noise for a command line; real errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# libsrtp (aiortc's, for the webcam page) crashes in srtp_init() when TensorFlow was loaded
# first in the same process; loading it first, which costs a few ms, avoids that. Where a
# script imported TensorFlow (or Keras on it) before this package, loading it now would be the
# crash itself, so it is left for aiortc to load, if it is ever needed.
if "tensorflow" not in sys.modules:
    try:
        import pylibsrtp  # noqa: F401
    except ImportError:
        pass

from .labels import EMOTIONS  # noqa: E402

__all__ = ["EMOTIONS", "EmotionRecognizer", "read_image", "annotate"]


def __getattr__(name: str):
    # Lazy, so `import emotion` stays fast and light until the model is needed.
    if name == "EmotionRecognizer":
        from .recognizer import EmotionRecognizer

        return EmotionRecognizer
    if name == "read_image":
        from .images import read_image

        return read_image
    if name == "annotate":
        from .draw import annotate

        return annotate
    raise AttributeError(name)
