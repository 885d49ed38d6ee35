"""Decode + resize with JPEG DCT-domain downscaling (``Image.draft``) against a full decode, same images.

Run from the repository root::

    .venv/bin/python benchmarks/bench_decode.py            # 48 JPEGs, 128 px, best of 3
    .venv/bin/python benchmarks/bench_decode.py --images 96 --size 224

The images are generated (fixed seed): 640x480 to 1600x1200, JPEG quality 75-95, with smooth
gradients, sensor-like noise, shapes and edges, so that they compress and decode like photos rather
than like flat test cards. Both modes go through :func:`fleetvision.decode.decode_photo` (the only
difference is ``draft=``), are interleaved round by round and report the best round, which damps
noise from other processes on a shared machine. The result is a ratio, not an absolute time, and is
written as JSON to ``benchmarks/results/decode.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageDraw, ImageFilter

from fleetvision.decode import decode_photo

logger = logging.getLogger("bench_decode")

SIZES = ((640, 480), (800, 600), (1024, 768), (1280, 960), (1600, 1200))
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "decode.json"


def photo_jpeg(width: int, height: int, quality: int, rng: np.random.Generator) -> bytes:
    """A photo-like JPEG: gradient sky/ground, noise, a few shapes with hard and soft edges."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    y /= height
    x /= width
    horizon = 0.45 + 0.1 * rng.random()
    sky = np.stack([120 + 80 * y, 160 + 60 * y, 220 - 40 * y], -1)
    ground = np.stack([90 + 50 * x, 85 + 30 * y, 70 + 20 * x], -1)
    base = np.where((y < horizon)[..., None], sky, ground)
    base += rng.normal(0, 4 + 4 * rng.random(), (height, width, 3)).astype(np.float32)
    im = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(6, 14))):
        x0, y0 = int(rng.integers(0, width - 60)), int(rng.integers(0, height - 60))
        w, h = int(rng.integers(40, width // 3)), int(rng.integers(30, height // 3))
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        if rng.random() < 0.5:
            draw.rounded_rectangle([x0, y0, x0 + w, y0 + h], radius=int(rng.integers(2, 20)), fill=colour)
        else:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=colour, outline=(20, 20, 20), width=2)
    im = im.filter(ImageFilter.GaussianBlur(0.6))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def make_images(count: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        width, height = SIZES[i % len(SIZES)]
        out.append(photo_jpeg(width, height, int(rng.integers(75, 96)), rng))
    return out


def time_mode(images: list[bytes], size: int, draft: bool) -> float:
    start = time.perf_counter()
    for data in images:
        result = decode_photo(data, size, 40_000_000, draft=draft)
        if not result.ok:
            raise RuntimeError(f"benchmark image failed to decode: {result.error_code} {result.error_detail}")
    return time.perf_counter() - start


def run(images: int, size: int, repeats: int, seed: int) -> dict[str, object]:
    data = make_images(images, seed)
    time_mode(data[:4], size, True)  # warm up imports and caches
    time_mode(data[:4], size, False)
    drafted, full = [], []
    for _ in range(repeats):
        drafted.append(time_mode(data, size, True))
        full.append(time_mode(data, size, False))
    best_draft, best_full = min(drafted), min(full)
    return {
        "benchmark": "decode_photo draft vs full decode",
        "images": images,
        "image_sizes": [f"{w}x{h}" for w, h in SIZES],
        "jpeg_quality": "75-95",
        "mean_jpeg_kib": round(sum(len(d) for d in data) / len(data) / 1024, 1),
        "output_size": size,
        "repeats": repeats,
        "seed": seed,
        "seconds_draft_best": round(best_draft, 4),
        "seconds_full_best": round(best_full, 4),
        "ms_per_image_draft": round(1000 * best_draft / images, 3),
        "ms_per_image_full": round(1000 * best_full / images, 3),
        "speedup": round(best_full / best_draft, 2),
        "seconds_draft_rounds": [round(t, 4) for t in drafted],
        "seconds_full_rounds": [round(t, 4) for t in full],
        "python": platform.python_version(),
        "pillow": PIL.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--size", type=int, default=128, help="model input side in pixels")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    result = run(args.images, args.size, args.repeats, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    logger.info("wrote %s", args.out)
    print(
        f"decode+resize to {args.size}px, {args.images} JPEGs: draft {result['ms_per_image_draft']} ms/image, "
        f"full {result['ms_per_image_full']} ms/image, speed-up x{result['speedup']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
