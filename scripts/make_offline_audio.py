"""Make the offline spoken clips, audio_files/offline/<lang>/<emotion>.wav, with espeak-ng.

Run once after changing a phrase: `python scripts/make_offline_audio.py` (needs `apt-get install
espeak-ng`). The clips are 16 kHz mono 16-bit WAV, trimmed of silence, so all of them together stay
around a megabyte and play in every browser without a codec.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from emotion.labels import EMOTIONS
from emotion.speech import LANGUAGES, OFFLINE_DIR, offline_path, phrase

ROOT = Path(__file__).resolve().parent.parent

RATE = 16_000
# espeak-ng voices for our language codes.
VOICES = {"en": "en-us", "fr": "fr-fr", "de": "de", "es": "es"}


def synthesise(text: str, voice: str) -> tuple[np.ndarray, int]:
    """espeak-ng's samples (int16) and rate for a sentence."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "--stdout", text],
                         check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    return samples, rate


def to_clip(samples: np.ndarray, rate: int) -> np.ndarray:
    """Trim silence (keeping 50 ms), resample to 16 kHz, normalise to -1 dBFS."""
    loud = np.flatnonzero(np.abs(samples) > 300)
    if len(loud):
        pad = rate // 20
        samples = samples[max(0, loud[0] - pad): loud[-1] + pad]
    x = samples.astype(np.float64)
    if rate != RATE:
        from math import gcd

        g = gcd(RATE, rate)
        x = resample_poly(x, RATE // g, rate // g)
    peak = np.max(np.abs(x)) or 1.0
    return np.clip(x * (0.89 * 32767 / peak), -32768, 32767).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OFFLINE_DIR)
    parser.add_argument("--lang", nargs="*", default=list(LANGUAGES), choices=LANGUAGES)
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        print("error: espeak-ng is not installed (apt-get install espeak-ng)", file=sys.stderr)
        return 2
    total = 0
    for lang in args.lang:
        for emotion in EMOTIONS:
            samples, rate = synthesise(phrase(emotion, lang), VOICES[lang])
            path = offline_path(emotion, lang, args.out)
            write_wav(path, to_clip(samples, rate))
            total += path.stat().st_size
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            print(f"{shown}  {path.stat().st_size // 1024} KiB")
    print(f"{len(args.lang) * len(EMOTIONS)} clips, {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
