#!/usr/bin/env bash
# Install everything the tests need, then run them: `bash scripts/test.sh [pytest args]`
# (the quick loop: `bash scripts/test.sh -m "not slow and not browser"`).
# System packages (a browser for the webcam page's test, ffmpeg, espeak-ng, nginx and coturn for the
# deployment test) come from apt when this runs as root on Debian/Ubuntu; elsewhere install them
# yourself or those tests skip.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  missing=""
  for pkg in chromium chromium-driver ffmpeg espeak-ng nginx coturn; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
  done
  if [ -n "$missing" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
fi
# The requirements, and this checkout as the `emotion` package (editable), as the README sets up.
python -m pip install -q -r requirements.txt -e .
python -m pytest "$@"
