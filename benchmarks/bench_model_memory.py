"""Memory of one scoring worker: the four starter models, resident and at the peak of a batch.

Run from the repository root::

    .venv/bin/python benchmarks/bench_model_memory.py             # batches of 64 and 256

Each variant runs in a fresh Python process (peak RSS only grows): load TensorFlow and the four starter
models as the scoring workers do (``serving.load_models``: heads on one pretrained backbone fused into
one model), warm up on 8 images, note the RSS, push one batch of random uint8 images through, note the
peak RSS (``ru_maxrss``). ``mb_per_image`` = (peak - warm) / batch: what a batch in flight adds. Results
go to ``benchmarks/results/model_memory.json``; the budget in ``fleetvision.models.serving.load_models``
comes from here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STARTER = ROOT / "models" / "starter"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "model_memory.json"
MB = 2**20


def child(batch: int) -> dict[str, float]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np

    from fleetvision.models.serving import read_model_folder

    folder = read_model_folder(STARTER)
    size = folder.input_size
    predict = list(folder.predictors().values())
    images = np.random.default_rng(0).integers(0, 256, (batch, size, size, 3), np.uint8)
    for p in predict:
        p(images[:8])
    warm = _rss()
    for p in predict:
        p(images)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return {
        "warm_mb": round(warm / MB),
        "peak_mb": round(peak / MB),
        "mb_per_image": round((peak - warm) / batch / MB, 2),
    }


def _rss() -> int:
    """Resident set size of this process, bytes (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return 0
    variants = {}
    for batch in (64, 256):
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(batch)], check=True, capture_output=True, text=True
        )
        variants[f"batch_{batch}"] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"batch of {batch}: {variants[f'batch_{batch}']}")
    result = {
        "benchmark": "scoring worker memory, four starter models",
        "variants": variants,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
