"""Decode time and peak memory of phone-sized JPEGs (12, 48, 108, 200 MP), and how fast bombs are refused.

Run from the repository root::

    .venv/bin/python benchmarks/bench_big_photos.py               # 224 px, best of 3
    .venv/bin/python benchmarks/bench_big_photos.py --size 128 --repeat 5

Each JPEG is generated once into a temporary folder (a small photo-like image upscaled with NEAREST and
saved at quality 85, so the file compresses like a photo with flat patches, not like a flat card) and
then decoded by :func:`fleetvision.decode.decode_photo` with the configured limits
(``scoring.max_image_pixels``, ``scoring.max_declared_pixels``) in a fresh Python process per case, so
that the peak resident memory measured there belongs to that decode alone: the figure reported is the
growth of the peak over the process's state just before decoding (imports done, file bytes read).
The peak is ``VmHWM`` from ``/proc/self/status`` (Linux keeps ``ru_maxrss`` across ``exec``, so a child
would report its parent's peak); ``ru_maxrss`` elsewhere. Pillow allocates pixels with ``malloc``,
which ``tracemalloc`` does not see; the resident peak does. For contrast, the 12 and 48 MP photos are
also decoded without the DCT draft (full size). The bombs (a PNG declaring 40000x40000, JPEGs
declaring 65000x65000 and 300 MP) are headers only: the time is what refusing them costs. Results go
to ``benchmarks/results/big_photos.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

from fleetvision.config import ScoringConfig, load_config

logger = logging.getLogger("bench_big_photos")

PHOTOS = {12: (4000, 3000), 48: (8000, 6000), 108: (12000, 9000), 200: (16320, 12240)}
FULL_DECODE_MP = (12, 48)  # decoded without the draft too, for contrast
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "big_photos.json"


# ----------------------------------------------------------------------------------------- makers
def phone_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """A photo-like JPEG of width x height, cheap to make: 1/32-scale gradient + noise, upscaled NEAREST."""
    rng = np.random.default_rng(seed)
    w, h = max(1, width // 32), max(1, height // 32)
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    small = np.stack([110 + 90 * x, 90 + 70 * y, 150 - 60 * x * y], -1) + rng.normal(0, 12, (h, w, 3))
    im = Image.fromarray(np.clip(small, 0, 255).astype(np.uint8)).resize((width, height), Image.Resampling.NEAREST)
    out = io.BytesIO()
    im.save(out, format="JPEG", quality=85)
    return out.getvalue()


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header declares width x height (a bomb's header)."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 130, 140)).save(out, format="JPEG")
    data = bytearray(out.getvalue())
    struct.pack_into(">HH", data, data.index(b"\xff\xc0") + 5, height, width)
    return bytes(data)


def png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


# ------------------------------------------------------------------------------------ measurement
def peak_rss_kib() -> int:
    """This process's peak resident memory in KiB (``VmHWM``; ``ru_maxrss`` where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(path: Path, size: int, max_pixels: int, max_declared: int, repeat: int, draft: bool) -> dict:
    """Decode ``path`` ``repeat`` times in this process; time per decode and peak-RSS growth (MiB)."""
    from fleetvision.decode import decode_photo

    data = path.read_bytes()
    before = peak_rss_kib()
    times = []
    photo = None
    for _ in range(repeat):
        start = time.perf_counter()
        photo = decode_photo(data, size, max_pixels, max_declared_pixels=max_declared, draft=draft)
        times.append(time.perf_counter() - start)
    peak = peak_rss_kib()
    assert photo is not None
    return {
        "error_code": photo.error_code,
        "error_detail": photo.error_detail,
        "best_s": round(min(times), 5),
        "median_s": round(statistics.median(times), 5),
        "peak_rss_growth_mib": round((peak - before) / 1024, 1),
    }


def measure_in_subprocess(
    path: Path, args: argparse.Namespace, max_pixels: int, max_declared: int, draft: bool
) -> dict:
    """:func:`measure` in a fresh interpreter, so its peak memory is this case's alone."""
    cmd = [
        sys.executable, __file__, "--measure", str(path), "--size", str(args.size), "--repeat", str(args.repeat),
        "--max-pixels", str(max_pixels), "--max-declared", str(max_declared),
    ]
    if not draft:
        cmd.append("--no-draft")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=None, help="model input side (default: models.input_size)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--max-pixels", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--max-declared", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-draft", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:  # the child: one case, one JSON line
        print(json.dumps(measure(args.measure, args.size, args.max_pixels, args.max_declared, args.repeat,
                                 not args.no_draft)))
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = load_config(environ={})
    args.size = args.size or config.models.input_size
    limits: ScoringConfig = config.scoring
    cases = []
    with tempfile.TemporaryDirectory(prefix="fv-big-photos-") as tmp:
        files: dict[str, tuple[Path, int, int]] = {}
        for mp, (w, h) in PHOTOS.items():
            start = time.perf_counter()
            path = Path(tmp) / f"{mp}mp.jpg"
            path.write_bytes(phone_jpeg(w, h, seed=mp))
            files[f"jpeg_{mp}mp"] = (path, w, h)
            logger.info("made %s: %dx%d, %d bytes in %.1f s", path.name, w, h, path.stat().st_size,
                        time.perf_counter() - start)
        for name, (data, w, h) in {
            "png_bomb_40000x40000": (png_declaring(40_000, 40_000), 40_000, 40_000),
            "png_48mp_header": (png_declaring(8000, 6000), 8000, 6000),
            "jpeg_bomb_65000x65000": (jpeg_declaring(65_000, 65_000), 65_000, 65_000),
            "jpeg_300mp_header": (jpeg_declaring(20_000, 15_000), 20_000, 15_000),
        }.items():
            path = Path(tmp) / f"{name}.bin"
            path.write_bytes(data)
            files[name] = (path, w, h)

        for name, (path, w, h) in files.items():
            runs = [("draft", True)]
            if name.startswith("jpeg_") and any(name == f"jpeg_{mp}mp" for mp in FULL_DECODE_MP):
                runs.append(("full_decode", False))
            for mode, draft in runs:
                # a full decode needs a pixel limit above the photo, or it is refused (as it should be)
                max_pixels = limits.max_image_pixels if draft else limits.max_declared_pixels
                result = measure_in_subprocess(path, args, max_pixels, limits.max_declared_pixels, draft)
                case = {
                    "case": name, "mode": mode, "width": w, "height": h,
                    "megapixels": round(w * h / 1e6, 1), "file_bytes": path.stat().st_size, **result,
                }
                cases.append(case)
                logger.info(
                    "%-24s %-11s %6.1f MP  %-16s best %.4f s  peak RSS +%.1f MiB",
                    name, mode, case["megapixels"], result["error_code"] or "ok", result["best_s"],
                    result["peak_rss_growth_mib"],
                )

    report = {
        "benchmark": "big_photos",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_big_photos.py " + " ".join(sys.argv[1:]),
        "model_input_size": args.size,
        "repeat": args.repeat,
        "max_image_pixels": limits.max_image_pixels,
        "max_declared_pixels": limits.max_declared_pixels,
        "environment": {
            "python": platform.python_version(),
            "pillow": PIL.__version__,
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
        },
        "notes": (
            "peak_rss_growth_mib: growth of the decoding process's peak resident memory over its state just "
            "before decoding (imports done, file read), one fresh process per case. best_s: the fastest of "
            "`repeat` decodes. Times on a shared machine; compare rows, not machines."
        ),
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    logger.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
