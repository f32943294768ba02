"""How long Cancel takes on the Training page's jobs: a run started as the page starts it,
cancelled after a few batches, timed until the job is no longer active (what the page waits for)
and until its process has exited.

    python scripts/time_cancel.py [--data ../shared/fer2013] [--after 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from emotion.app import jobs
from emotion.config import SHARED_FER2013
from emotion.training import TrainConfig


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED_FER2013))
    parser.add_argument("--after", type=int, default=3, help="cancel after this many batches")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as runs:
        manager = jobs.JobManager(Path(runs))
        job = manager.start(TrainConfig(data=args.data, epochs=args.epochs, batch_size=64))
        started = time.monotonic()
        while job.active and not (job.progress and job.progress.step >= args.after):
            time.sleep(0.05)
        if not job.active:
            print(f"the run ended before {args.after} batches: {job.status_text}")
            return 1
        print(f"{job.progress.step} batches after {time.monotonic() - started:.1f} s "
              f"(bar at {job.fraction:.3f})")
        clicked = time.monotonic()
        job.cancel()
        while job.active:
            time.sleep(0.02)
        print(f"cancel -> run stopped: {time.monotonic() - clicked:.2f} s "
              f"(bar at {job.fraction:.3f}: {job.status_text})")
        job.wait(60)
        print(f"cancel -> training process gone: {time.monotonic() - clicked:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
