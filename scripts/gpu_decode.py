"""JPEG decode on the GPU (nvJPEG through torchvision), measured against the CPU decoder, for gpu_check.

Scoring decodes on the executor's CPU (:func:`fleetvision.decode.decode_batch`: PIL, JPEG draft mode,
EXIF transpose, bilinear squash to S x S). On a lent H200 the CPU decode is the GPU executor's bound by
about 11x (docs/runbook.md, *GPU check*). This measures what decoding on the GPU would give, before
anything is built on it: ``torchvision.io.decode_jpeg(..., device="cuda")`` on the carried sample's JPEG
files, then a bilinear (antialiased) resize to S x S on the GPU, in batches, and how far its pixels are
from ``decode_batch``'s on the same files. Nothing here is used by scoring; the device may lack
torchvision, in which case the report says so and the check goes on.

Operating limits: JPEG only (PNG and WebP files in the sample are counted, not decoded); EXIF orientation
is not applied (nvJPEG does not read it), so a rotated photo would differ from ``decode_batch``; no
decompression-bomb guard (the sample is the project's own renders).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COMPARE_PHOTOS = 32


def jpeg_only(data: Sequence[bytes]) -> list[bytes]:
    """The files nvJPEG is for: those whose signature the scoring decoder reads as JPEG."""
    from fleetvision.decode import _signature_format

    return [d for d in data if _signature_format(d) == "JPEG"]


def _squash(torch: Any, images: Sequence[Any], size: int) -> Any:
    """``[N, S, S, 3]`` uint8 on the GPU from decoded ``[3, H, W]`` uint8 images (bilinear, antialiased)."""
    out = torch.empty((len(images), size, size, 3), dtype=torch.uint8, device=images[0].device)
    for i, im in enumerate(images):
        resized = torch.nn.functional.interpolate(
            im[None].float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
        out[i] = resized[0].round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0)
    return out


def _decode(torch: Any, decode_jpeg: Any, mode: Any, chunk: list[Any]) -> list[Any]:
    """One batched nvJPEG call where torchvision has it (>= 0.19), else one call per photo."""
    try:
        return list(decode_jpeg(chunk, device="cuda", mode=mode))
    except (TypeError, AttributeError):  # torchvision < 0.19 takes one tensor
        return [decode_jpeg(data, device="cuda", mode=mode) for data in chunk]


def measure_gpu_decode(files: Sequence[Path], size: int, seconds: float = 3.0,
                       batches: Sequence[int] = (64, 256)) -> dict[str, Any]:
    """Photos/s of GPU JPEG decode (+ resize, + copy to host) per batch size; pixel difference to the CPU decoder.

    Never raises: a missing torchvision, no CUDA device or a failure is reported under ``available``/``error``.
    """
    report: dict[str, Any] = {"decoder": "torchvision.io.decode_jpeg(device='cuda') + bilinear antialiased resize"}
    try:
        import torch
        import torchvision
        from torchvision.io import ImageReadMode, decode_jpeg
    except ImportError as exc:
        return {**report, "available": False, "why": f"{type(exc).__name__}: {exc}"}
    report.update(torch=torch.__version__, torchvision=torchvision.__version__)
    if not torch.cuda.is_available():
        return {**report, "available": False, "why": "torch sees no CUDA device"}
    report["available"] = True
    try:
        import numpy as np

        from fleetvision.decode import decode_batch

        data = [Path(f).read_bytes() for f in files]
        jpegs = jpeg_only(data)
        cpu, photos = decode_batch(list(jpegs), size, 40_000_000)
        cpu_ok = [i for i, p in enumerate(photos) if p.ok]
        usable, gpu_failed = [], 0
        for i in cpu_ok:  # one by one first: a file nvJPEG refuses is counted, not allowed to fail a batch
            tensor = torch.frombuffer(bytearray(jpegs[i]), dtype=torch.uint8)
            try:
                decode_jpeg(tensor, device="cuda", mode=ImageReadMode.RGB)
                usable.append((i, tensor))
            except RuntimeError:
                gpu_failed += 1
        report.update(sample_files=len(data), sample_jpegs=len(jpegs), jpegs_cpu_decoded=len(cpu_ok),
                      jpegs_gpu_refused=gpu_failed, sample_jpeg_mib=round(sum(map(len, jpegs)) / 2**20, 2))
        if not usable:
            return {**report, "error": "no JPEG in the sample decodes on the GPU"}
        tensors = [t for _, t in usable]
        mode = ImageReadMode.RGB
        head = [i for i, _ in usable][:COMPARE_PHOTOS]
        gpu = _squash(torch, _decode(torch, decode_jpeg, mode, tensors[:len(head)]), size).cpu().numpy()
        diff = np.abs(gpu.astype(np.int16) - cpu[[cpu_ok.index(i) for i in head]].astype(np.int16))
        report["vs_cpu_decode_batch"] = {
            "photos": len(head), "mean_abs_diff": round(float(diff.mean()), 3),
            "worst_photo_mean_abs_diff": round(float(diff.reshape(len(head), -1).mean(axis=1).max()), 3),
            "max_abs_diff": int(diff.max()),
            "note": "decode_batch downscales in the DCT domain (JPEG draft) before its bilinear squash: "
                    "some difference is expected"}
        torch.cuda.synchronize()
        rates: list[dict[str, Any]] = []
        for bs in batches:
            entry: dict[str, Any] = {"batch": bs}
            for name, to_host, resize in (("decode", False, False), ("decode_resize", False, True),
                                          ("decode_resize_to_host", True, True)):
                done, start, i = 0, time.perf_counter(), 0
                while time.perf_counter() - start < seconds:
                    chunk = [tensors[(i + k) % len(tensors)] for k in range(bs)]
                    i += bs
                    images = _decode(torch, decode_jpeg, mode, chunk)
                    if resize:
                        batch = _squash(torch, images, size)
                        if to_host:
                            batch.cpu().numpy()
                    torch.cuda.synchronize()
                    done += bs
                elapsed = time.perf_counter() - start
                entry[f"photos_per_second_{name}"] = round(done / elapsed, 1)
            rates.append(entry)
            print(f"gpu decode, batch {bs:4d}: " + "  ".join(
                f"{k.removeprefix('photos_per_second_')} {v:9.1f}/s" for k, v in entry.items() if k != "batch"),
                flush=True)
        report["throughput"] = rates
        report["gpu_memory_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    except Exception as exc:  # a measurement, not the check's verdict: reported, never fatal
        report["error"] = f"{type(exc).__name__}: {exc}"
    return report

