"""Benchmark: how well does a renderer's photo teach real photos? A linear probe per renderer.

Run from the repository root::

    .venv/bin/python benchmarks/bench_render_transfer.py --views /elsewhere/views.csv
    .venv/bin/python benchmarks/bench_render_transfer.py --views FILE --per-family 140 --renderers painter,pbr

For each renderer (``painter``: :func:`fleetvision.synth.render.render_photo`; ``pbr``: Mitsuba,
:func:`fleetvision.synth.pbr_scene.render_exterior`) the same exterior specs are rendered (5 view
families x ``--per-family``, body types in turn, flanks at random, 288 x 216 or portrait, JPEG 50-95),
decoded by the scoring decoder at 224 and passed through the frozen EfficientNet-Lite0 backbone; the
stride-32 map's left and right halves are pooled apart (2 x 1280 features, as in issue 10's probe). A
multinomial logistic regression (numpy, L2, fixed settings: nothing is tuned on the real photos) learns
the 5 unsided views and, separately, the 7 body types from each renderer's photos and their mirror
images, and is scored, averaging a photo and its mirror, on:

* the real dev photos (``../shared/realdev``, evaluation only, never trained on) against someone's own
  labels of them (``--views``: ``file,view,body``, ``fleetvision.models.real_view_labels``; keep the
  file out of the repository);
* the other renderer's photos (held-out renders of a different look).

It measures the renders, not the models: the same probe, the same backbone, only the training photos
change. Features are cached under ``--cache`` by renderer, count and generator code. Result (aggregates
only): ``benchmarks/results/render_transfer.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = ROOT.parent / "shared" / "realdev"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "render_transfer.json"
DEFAULT_CACHE = ROOT / "benchmarks" / ".cache" / "render_transfer"
FAMILIES = ("full_front", "front_3q", "side", "rear_3q", "full_rear")
SIZE = 224


def render_set(renderer: str, per_family: int, seed: int) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    """JPEG bytes, view-family index and body index of ``5 x per_family`` exterior renders."""
    from fleetvision.synth.files import encode_jpeg
    from fleetvision.synth.render import render_photo, sample_spec
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
        elif renderer == "pbr":
            from fleetvision.synth.training_set import path_traced

            image = path_traced(spec, 12, taxonomy)[0]
        else:
            raise ValueError(f"unknown renderer {renderer!r}")
        photos.append(encode_jpeg(image, int(rng.integers(50, 96))))
        views.append(i % 5)
        body.append(bodies.index(body_type))
    return photos, np.array(views), np.array(body)


def features(photos: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(features, features of the mirror images): [N, 2560] each, float32."""
    from fleetvision.decode import decode_photo
    from fleetvision.models.efficientnet_lite import pretrained_backbone

    backbone, _ = pretrained_backbone("efficientnet_lite0", (SIZE, SIZE, 3))
    images = []
    for data in photos:
        decoded = decode_photo(data, SIZE, 10**9)
        if decoded.array is None:
            raise ValueError(f"a photo did not decode: {decoded.error_code} {decoded.error_detail}")
        images.append(decoded.array)
    x = np.stack(images)

    def pooled(batch: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(batch), 64):
            fmap = np.asarray(backbone(batch[i:i + 64].astype("float32"), training=False)[3])
            w = fmap.shape[2]
            out.append(np.concatenate([fmap[:, :, :(w + 1) // 2].mean((1, 2)), fmap[:, :, w // 2:].mean((1, 2))], 1))
        return np.concatenate(out).astype(np.float32)

    return pooled(x), pooled(x[:, :, ::-1].copy())


def _generator_digest() -> str:
    """Every module of ``fleetvision/synth`` (the painter's and the path tracer's)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src" / "fleetvision" / "synth").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def cached_set(renderer: str, per_family: int, seed: int, cache: Path) -> dict[str, np.ndarray]:
    key = f"{renderer}-n{per_family}-s{seed}-{_generator_digest()}"
    path = cache / f"{key}.npz"
    if path.is_file():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    start = time.perf_counter()
    photos, views, body = render_set(renderer, per_family, seed)
    render_s = time.perf_counter() - start
    f, mirrored = features(photos)
    out = {"f": f, "mirrored": mirrored, "view": views, "body": body, "render_s": np.array(render_s)}
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    os.replace(tmp, path)
    return out


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


def real_set(photos_dir: Path, views_file: Path) -> dict[str, Any]:
    from fleetvision.models.real_view_labels import read_view_labels
    from fleetvision.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    files = sorted(p.name for p in (photos_dir / "plates").glob("*.jpg"))
    labels = read_view_labels(views_file, files, taxonomy)
    keep = [i for i, v in enumerate(labels["view"]) if v in FAMILIES]
    photos = [(photos_dir / "plates" / files[i]).read_bytes() for i in keep]
    f, mirrored = features(photos)
    body = [labels["body"][i] for i in keep]
    return {"f": f, "mirrored": mirrored, "view": np.array([FAMILIES.index(labels["view"][i]) for i in keep]),
            "body": np.array([taxonomy.body_types.index(b) if b in taxonomy.body_types else -1 for b in body])}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=Path, required=True, help="file,view,body labels of the real photos")
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    ap.add_argument("--renderers", default="painter,pbr")
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
    sets = {r: cached_set(r, args.per_family, args.seed, args.cache) for r in renderers}
    real = real_set(args.photos, args.views)
    result: dict[str, Any] = {
        "benchmark": "render_transfer", "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_render_transfer.py " + " ".join(
            a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("/")),
        "probe": "frozen EfficientNet-Lite0 at 224, stride-32 map pooled by left/right half, softmax regression",
        "per_family": args.per_family, "seed": args.seed,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "real_photos": {"n_view_labels": len(real["view"]), "n_body_labels": int((real["body"] >= 0).sum())},
        "renderers": {},
    }
    for name, data in sets.items():
        entry: dict[str, Any] = {"photos": len(data["view"]),
                                 "render_seconds_per_photo": round(float(data["render_s"]) / len(data["view"]), 3)}
        for task in ("view", "body"):
            x = np.concatenate([data["f"], data["mirrored"]])
            y = np.concatenate([data[task], data[task]])
            n_classes = 5 if task == "view" else len(names)
            predict = fit_softmax(x, y, n_classes)

            def pred(d: dict[str, np.ndarray], predict: Any = predict) -> np.ndarray:
                return ((predict(d["f"]) + predict(d["mirrored"])) / 2).argmax(1)

            keep = real[task] >= 0
            p = pred(real)[keep]
            entry[f"real_{task}"] = (view_report(p, real[task][keep]) if task == "view"
                                     else body_report(p, real[task][keep], names))
            for other, odata in sets.items():
                if other != name:
                    entry[f"{other}_renders_{task}_accuracy"] = round(float((pred(odata) == odata[task]).mean()), 3)
        result["renderers"][name] = entry
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for name, entry in result["renderers"].items():
        v, b = entry["real_view"], entry["real_body"]
        print(f"{name:8s} real view {v['accuracy']:.3f} (end {v['end_right']:.3f}, head-on vs 3/4 "
              f"{v['head_on_vs_3q_when_end_right']}), real body {b['accuracy']:.3f} "
              f"(majority {b['majority_class_accuracy']:.3f}, balanced {b['balanced_accuracy']:.3f}); "
              f"{entry['render_seconds_per_photo']} s/photo")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
