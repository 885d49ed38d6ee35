"""Benchmark: how well does a renderer's photo teach real photos, and through which backbone? A linear probe.

Run from the repository root::

    .venv/bin/python benchmarks/bench_render_transfer.py --views /elsewhere/views.csv
    .venv/bin/python benchmarks/bench_render_transfer.py --views FILE --renderers pbr \
        --backbones efficientnet_lite0@224,efficientnet_lite1@240,efficientnet_lite2@260 --out FILE

For each renderer (``painter``: :func:`fleetvision.synth.render.render_photo`; ``pbr``: Mitsuba,
:func:`fleetvision.synth.pbr_scene.render_exterior`; ``pbr-undenoised``: the same without its denoiser) the
same exterior specs are rendered (5 view
families x ``--per-family``, body types in turn, flanks at random, 288 x 216 or portrait, JPEG 50-95),
decoded by the scoring decoder at the backbone's input size and passed through the frozen ImageNet
backbone (``--backbones``: ``name@size`` entries, default EfficientNet-Lite0 at 224; Lite1 and Lite2 need
the ``backbones`` extra); the stride-32 map's left and right halves are pooled apart (2 x 1280 features,
as in issue 10's probe). A multinomial logistic regression (numpy, full-batch Adam, 400 steps) learns the
5 unsided views and, separately, the 7 body types from each renderer's photos and their mirror images,
at each L2 strength of ``--l2`` (all reported: the probe's answer moves with it, and nothing is chosen
on the real photos), and is scored, averaging a photo and its mirror, on:

* the real dev photos (``../shared/realdev``, evaluation only, never trained on) against someone's own
  labels of them (``--views``: ``file,view,body``, ``fleetvision.models.real_view_labels``; keep the
  file out of the repository);
* the other renderer's photos (held-out renders of a different look).

It measures the renders and the backbones, not the models: the same probe, only the training photos or the
backbone change. The rendered photos are cached under ``--cache`` by renderer, count, seed and generator
code, their features by backbone and size besides. Result (aggregates only):
``benchmarks/results/render_transfer.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from bench_cache import pack_photos, save_npz, synth_digest, unpack_photos

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = ROOT.parent / "shared" / "realdev"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "render_transfer.json"
DEFAULT_CACHE = ROOT / "benchmarks" / ".cache" / "render_transfer"
FAMILIES = ("full_front", "front_3q", "side", "rear_3q", "full_rear")
SIZE = 224


def render_set(renderer: str, per_family: int, seed: int) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    """JPEG bytes, view-family index and body index of ``5 x per_family`` exterior renders."""
    from fleetvision.synth.files import encode_jpeg
    from fleetvision.synth.photo_spec import sample_spec
    from fleetvision.synth.render import render_photo
    from fleetvision.synth.rng import derive_rng
    from fleetvision.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    bodies = taxonomy.body_types
    photos, views, body = [], [], []
    for i in range(per_family * len(FAMILIES)):
        rng = derive_rng(seed, "render-transfer", i)
        family, body_type = FAMILIES[i % 5], bodies[(i // 5) % len(bodies)]
        side = None if family in ("full_front", "full_rear") else ("driver" if rng.random() < 0.5 else "passenger")
        shot = family if side is None else f"{family}_{side}"
        size = (288, 216) if rng.random() < 0.8 else (216, 288)
        style = ("AU", "BR", "DE", "UK", "US")[int(rng.integers(5))]
        spec = sample_spec(rng, taxonomy, shot, driver_side="right", plate_style=style, size=size,
                           body_type=body_type, banner=False)
        if renderer == "painter":
            image = render_photo(spec).image
        elif renderer in ("pbr", "pbr-undenoised"):
            from fleetvision.synth.training_set import path_traced

            image = path_traced(spec, 12, taxonomy, denoise=renderer == "pbr").image
        else:
            raise ValueError(f"unknown renderer {renderer!r}")
        photos.append(encode_jpeg(image, int(rng.integers(50, 96))))
        views.append(i % 5)
        body.append(bodies.index(body_type))
    return photos, np.array(views), np.array(body)


@functools.lru_cache(maxsize=1)  # one backbone at a time: the features of each set and the timing share it
def backbone_model(name: str, size: int) -> Any:
    """The frozen backbone ``name`` at ``size`` x ``size`` (float RGB -> its 4 feature maps)."""
    from fleetvision.models.efficientnet_lite import pretrained_backbone

    return pretrained_backbone(name, (size, size, 3))[0]


def decode_all(photos: Sequence[bytes], size: int = SIZE) -> np.ndarray:
    """uint8 [N, size, size, 3]: the photos decoded as the scoring job decodes them (squash); refused
    with a clear error when one does not decode (a benchmark's photos must all count)."""
    from fleetvision.decode import decode_photo

    images = []
    for data in photos:
        decoded = decode_photo(data, size, 10**9)
        if decoded.array is None:
            raise ValueError(f"a photo did not decode: {decoded.error_code} {decoded.error_detail}")
        images.append(decoded.array)
    return np.stack(images)


def features(photos: Sequence[bytes], backbone_name: str = "efficientnet_lite0",
             size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(features, features of the mirror images): [N, 2 x channels] each, float32."""
    backbone = backbone_model(backbone_name, size)
    x = decode_all(photos, size)

    def pooled(batch: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(batch), 64):
            fmap = np.asarray(backbone(batch[i:i + 64].astype("float32"), training=False)[3])
            w = fmap.shape[2]
            out.append(np.concatenate([fmap[:, :, :(w + 1) // 2].mean((1, 2)), fmap[:, :, w // 2:].mean((1, 2))], 1))
        return np.concatenate(out).astype(np.float32)

    return pooled(x), pooled(x[:, :, ::-1].copy())


def cached_photos(renderer: str, per_family: int, seed: int, cache: Path) -> dict[str, Any]:
    """The rendered set (JPEG bytes and labels), cached by renderer, count, seed and generator code."""
    path = cache / f"photos-{renderer}-n{per_family}-s{seed}-{synth_digest()}.npz"
    if not path.is_file():
        start = time.perf_counter()
        photos, views, body = render_set(renderer, per_family, seed)
        render_s = time.perf_counter() - start
        save_npz(path, **pack_photos(photos), view=views, body=body, render_s=np.array(render_s))
    with np.load(path) as data:
        return {"photos": unpack_photos(data["jpeg"], data["ends"]), "view": data["view"],
                "body": data["body"], "render_s": float(data["render_s"])}


def cached_set(renderer: str, per_family: int, seed: int, cache: Path, backbone: str = "efficientnet_lite0",
               size: int = SIZE) -> dict[str, np.ndarray]:
    """Features of the rendered set through ``backbone`` at ``size``, cached beside the photos."""
    path = cache / f"{backbone}-{size}-{renderer}-n{per_family}-s{seed}-{synth_digest()}.npz"
    if not path.is_file():
        rendered = cached_photos(renderer, per_family, seed, cache)
        f, mirrored = features(rendered["photos"], backbone, size)
        save_npz(path, f=f, mirrored=mirrored, view=rendered["view"], body=rendered["body"],
              render_s=np.array(rendered["render_s"]))
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def fit_softmax(x: np.ndarray, y: np.ndarray, n_classes: int, l2: float = 1e-3, steps: int = 400,
                lr: float = 0.05) -> Any:
    """Multinomial logistic regression on standardised features (full-batch Adam): x -> probabilities."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    w = np.zeros((z.shape[1], n_classes))
    b = np.zeros(n_classes)
    onehot = np.eye(n_classes)[y]
    m = [np.zeros_like(w), np.zeros_like(b)]
    v = [np.zeros_like(w), np.zeros_like(b)]
    for t in range(1, steps + 1):
        logits = z @ w + b
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / len(z)
        grads = [z.T @ g + l2 * w, g.sum(0)]
        for k, (param, grad) in enumerate(zip((w, b), grads)):
            m[k] = 0.9 * m[k] + 0.1 * grad
            v[k] = 0.999 * v[k] + 0.001 * grad**2
            param -= lr * (m[k] / (1 - 0.9**t)) / (np.sqrt(v[k] / (1 - 0.999**t)) + 1e-8)

    def predict(f: np.ndarray) -> np.ndarray:
        logits = ((f - mean) / std) @ w + b
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    return predict


def view_report(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """5-way accuracy, the end (front/rear/side) and head-on vs 3/4 when the end is right; the confusion."""
    def end(a: np.ndarray) -> np.ndarray:
        return np.where(a <= 1, 0, np.where(a >= 3, 1, 2))

    end_right = end(pred) == end(truth)
    head_on = np.isin(truth, (0, 4)) == np.isin(pred, (0, 4))
    confusion = np.zeros((5, 5), int)
    np.add.at(confusion, (truth, pred), 1)
    return {"n": len(truth), "accuracy": round(float((pred == truth).mean()), 3),
            "end_right": round(float(end_right.mean()), 3),
            "head_on_vs_3q_when_end_right": round(float(head_on[end_right].mean()), 3) if end_right.any() else None,
            "confusion_true_by_pred": {FAMILIES[i]: confusion[i].tolist() for i in range(5) if confusion[i].sum()}}


def body_report(pred: np.ndarray, truth: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    counts = np.bincount(pred, minlength=len(names))
    present = [c for c in range(len(names)) if (truth == c).sum() >= 5]  # classes with a few real photos
    return {"n": len(truth), "accuracy": round(float((pred == truth).mean()), 3),
            "majority_class_accuracy": round(float(np.bincount(truth).max() / len(truth)), 3),
            # mean recall over the types with >= 5 real photos: not won by answering the commonest type
            "balanced_accuracy": round(float(np.mean([(pred[truth == c] == c).mean() for c in present])), 3),
            "recall": {names[c]: round(float((pred[truth == c] == c).mean()), 3) for c in present},
            "predicted_share": {names[i]: round(float(c / len(pred)), 3) for i, c in enumerate(counts) if c}}


def real_set(photos_dir: Path, views_file: Path, backbone: str = "efficientnet_lite0",
             size: int = SIZE) -> dict[str, Any]:
    """The labelled real photos' features; a photo counts for each task it has a label for (else -1)."""
    from fleetvision.models.real_view_labels import read_view_labels
    from fleetvision.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    files = sorted(p.name for p in (photos_dir / "plates").glob("*.jpg"))
    labels = read_view_labels(views_file, files, taxonomy)
    keep = [i for i, (v, b) in enumerate(zip(labels["view"], labels["body"]))
            if v in FAMILIES or b in taxonomy.body_types]
    photos = [(photos_dir / "plates" / files[i]).read_bytes() for i in keep]
    f, mirrored = features(photos, backbone, size)
    return {"f": f, "mirrored": mirrored,
            "view": np.array([FAMILIES.index(labels["view"][i]) if labels["view"][i] in FAMILIES else -1
                              for i in keep]),
            "body": np.array([taxonomy.body_types.index(labels["body"][i])
                              if labels["body"][i] in taxonomy.body_types else -1 for i in keep])}


def probe(sets: dict[str, dict[str, np.ndarray]], real: dict[str, Any], names: Sequence[str],
          l2s: Sequence[float]) -> dict[str, Any]:
    """Each renderer's probe at each L2, scored on the real photos and on the other renderers' photos.

    The full reports (confusion, recalls) are kept for the first L2; the rest give the headline figures.
    """
    out: dict[str, Any] = {}
    for name, data in sets.items():
        entry: dict[str, Any] = {"photos": len(data["view"]),
                                 "render_seconds_per_photo": round(float(data["render_s"]) / len(data["view"]), 3),
                                 "by_l2": {}}
        x = np.concatenate([data["f"], data["mirrored"]])  # each photo and its mirror image, same labels
        for k, l2 in enumerate(l2s):
            at: dict[str, Any] = {}
            for task in ("view", "body"):
                y = np.concatenate([data[task], data[task]])
                predict = fit_softmax(x, y, 5 if task == "view" else len(names), l2=l2)

                def pred(d: dict[str, np.ndarray], predict: Any = predict) -> np.ndarray:
                    return ((predict(d["f"]) + predict(d["mirrored"])) / 2).argmax(1)

                keep = real[task] >= 0
                if keep.any():
                    p = pred(real)[keep]
                    report = (view_report(p, real[task][keep]) if task == "view"
                              else body_report(p, real[task][keep], names))
                    if k == 0:
                        entry[f"real_{task}"] = report
                    headline = ("accuracy", "end_right", "head_on_vs_3q_when_end_right") if task == "view" \
                        else ("accuracy", "balanced_accuracy")
                    at.update({f"real_{task}_{h}": report[h] for h in headline})
                for other, odata in sets.items():
                    if other != name:
                        at[f"{other}_renders_{task}_accuracy"] = round(float((pred(odata) == odata[task]).mean()), 3)
            entry["by_l2"][f"{l2:g}"] = at
        out[name] = entry
    return out


def parse_backbones(text: str, default_size: int) -> list[tuple[str, int]]:
    """``name[@size],...`` -> [(name, size)]."""
    out = []
    for item in (t.strip() for t in text.split(",")):
        if item:
            name, _, size = item.partition("@")
            out.append((name, int(size) if size else default_size))
    return out


def time_backbone(backbone: str, size: int, photos: int = 64, repeats: int = 3) -> float:
    """Milliseconds a photo through the backbone alone, batches of 32 (best of ``repeats``, after a warm-up)."""
    model = backbone_model(backbone, size)
    x = np.random.default_rng(0).integers(0, 256, (photos, size, size, 3)).astype("float32")
    model(x[:32], training=False)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, photos, 32):
            model(x[i:i + 32], training=False)
        best = min(best, time.perf_counter() - start)
    return 1000 * best / photos


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=Path, required=True, help="file,view,body labels of the real photos")
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    ap.add_argument("--renderers", default="painter,pbr")
    ap.add_argument("--backbones", default=f"efficientnet_lite0@{SIZE}",
                    help="comma-separated name[@input size] (lite1/2: the backbones extra), each probed alone")
    ap.add_argument("--l2", default="1e-3,1e-4,1e-2,1e-1",
                    help="L2 strengths of the probe, each reported; the first gets the full report")
    ap.add_argument("--per-family", type=int, default=140)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT / "src"))
    from fleetvision.taxonomy import load_taxonomy

    names = load_taxonomy().body_types
    renderers = [r for r in args.renderers.split(",") if r]
    backbones = parse_backbones(args.backbones, SIZE)
    l2s = [float(v) for v in args.l2.split(",") if v]
    result: dict[str, Any] = {
        "benchmark": "render_transfer", "when": datetime.now(UTC).isoformat(timespec="seconds"),
        # the whole command, path values included: a labels file outside the repository is named, not read
        "command": "python benchmarks/bench_render_transfer.py " + " ".join(
            shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "probe": "frozen backbone, stride-32 map pooled by left/right half, softmax regression (400 Adam steps)",
        "per_family": args.per_family, "seed": args.seed, "l2": l2s,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "backbones": {},
    }
    for backbone, size in backbones:
        sets = {r: cached_set(r, args.per_family, args.seed, args.cache, backbone, size) for r in renderers}
        real = real_set(args.photos, args.views, backbone, size)
        result["real_photos"] = {"n_view_labels": int((real["view"] >= 0).sum()),
                                 "n_body_labels": int((real["body"] >= 0).sum())}
        result["backbones"][f"{backbone}@{size}"] = {
            "backbone": backbone, "input_size": size,
            "backbone_ms_per_photo": round(time_backbone(backbone, size), 2),
            "renderers": probe(sets, real, names, l2s)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for key, entries in result["backbones"].items():
        for name, entry in entries["renderers"].items():
            line = f"{key:24s} {name:8s} {entries['backbone_ms_per_photo']:6.1f} ms/photo"
            for figure, label in (("real_view_accuracy", "real view"),
                                  ("real_body_balanced_accuracy", "body balanced")):
                values = [at[figure] for at in entry["by_l2"].values() if figure in at]
                if values:
                    line += (f"  {label} {values[0]:.3f} (L2 range {min(values):.3f}-{max(values):.3f}, "
                             f"mean {np.mean(values):.3f})")
            print(line)
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
