"""Label efficiency: how fast labels from a new visual domain are absorbed, through import-labels and train.

Stand-in "real" data, obtained legitimately: photos drawn by the project's OLD renderer (commit d773b3f:
flat-shaded low-poly cars on cartoon backdrops), a visual domain the current renderer never shows
(``benchmarks/render_standin_photos.py``), split by car and by car model into a train pool and a
held-out test pool. For each labels-per-class count (10, 30, 100 by default) the script

1. writes a votes CSV of that many labels per 10-way bucket (8 exterior views, ``interior``,
   ``detail``: the last two as coarse group labels) and one of that many body-type labels per body
   type (from the same exterior photos), and imports both with the real ``fleetvision import-labels``;
2. fine-tunes from the synthetic starter heads with the real ``fleetvision train all --init-from``;
3. scores the new heads, and the starter alone (zero labels), on the held-out pool: 10-way, group and
   body accuracy (:mod:`fleetvision.models.coarse_metrics`), the backbone run once per test photo.

The mixing table repeats the ``--mix-count`` run with synthetic rows added at each weight of
``--mix-weights`` (``models.extra_datasets``; weight 0 is the run without them). ``--declared-noise 0 0.1
0.3`` adds runs on the body types the train cars' sellers would declare (``import-labels --from-listings``'
labels: ``--declared-per-listing`` exterior photos a car, that share of the cars declaring a wrong type),
body labels only (:func:`declared_rows`). Everything lives under
``--work`` (a temporary warehouse, MLflow database and artifacts), never the repository's warehouse.

    .venv/bin/python benchmarks/bench_label_efficiency.py --starter models/starter --work /tmp/fv_labeleff

Writes ``benchmarks/results/label_efficiency.json``. What it cannot show: accuracy on real photos (the
held-back real set is scored by the team with the same import-labels and train commands).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OLD_RENDERER_COMMIT = "d773b3f"
TEST_DATASET = "standin-heldout"
SYNTHETIC_PREFIX = "synthetic-train"
BASE_SETS = ("models.body_views=1", "models.body_prior={}")
IMPORT_SETS = ("models.consensus_min_votes=1", "models.import_eval_fraction=0", "models.import_val_fraction=0")

logger = logging.getLogger("bench_label_efficiency")


def _seeded(name: str, seed: int) -> str:
    """``standin-<name>`` for seed 0 (the names of earlier runs), ``standin-s<seed>-<name>`` for another seed:
    another seed draws other photos, so its rows go to their own dataset (no name a prefix of another)."""
    return f"standin-{name}" if seed == 0 else f"standin-s{seed}-{name}"


def declared_dataset(noise: float, seed: int = 0) -> str:
    """Dataset name of the declared-labels pool at one noise level."""
    return _seeded(f"declared-noise{round(noise * 100):03d}", seed)


def pool_dataset(count: int, seed: int = 0) -> str:
    """Dataset name of a train pool (zero-padded, so no name is a prefix of another)."""
    return _seeded(f"labels-n{count:04d}", seed)


# ------------------------------------------------------------------------------------ stand-in photos
def render_standin(out: Path, old_src: Path | None, train_cars: int, test_cars: int) -> None:
    """Render the stand-in photos with the old renderer (a temporary git worktree unless ``old_src``)."""
    worktree = None
    if old_src is None:
        worktree = Path(tempfile.mkdtemp(prefix="oldsynth-"))
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), OLD_RENDERER_COMMIT],
                       check=True, capture_output=True)
        old_src = worktree / "src"
    try:
        env = {**os.environ, "PYTHONPATH": str(old_src)}
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "render_standin_photos.py"), "--out", str(out),
                        "--train-cars", str(train_cars), "--test-cars", str(test_cars)], check=True, env=env)
    finally:
        if worktree is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False)


def read_pool(standin: Path, pool: str) -> list[dict[str, str]]:
    with (standin / f"{pool}.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def select_labels(rows: Sequence[dict[str, str]], count: int, seed: int) -> tuple[list[dict], list[dict]]:
    """``count`` angle labels per 10-way bucket and ``count`` body labels per body type.

    Body labels go to the photos labelled for their view first, then to other exterior photos of the
    pool. Nested: the first ``count`` of one seeded order, so the 30-label pool holds the 10-label one.
    """
    order = np.random.default_rng(seed).permutation(len(rows))
    angle: list[dict] = []
    taken: dict[str, int] = {}
    for i in order:
        row = rows[int(i)]
        if taken.get(row["bucket"], 0) < count:
            taken[row["bucket"]] = taken.get(row["bucket"], 0) + 1
            angle.append(row)
    body: list[dict] = []
    per_type: dict[str, int] = {}
    chosen = {row["image"] for row in angle}
    rest = [rows[int(i)] for i in order if rows[int(i)]["image"] not in chosen]
    for row in [*angle, *rest]:  # the photos labelled for their view first, then any other exterior photo
        kind = row["body_type"]
        if kind and per_type.get(kind, 0) < count:
            per_type[kind] = per_type.get(kind, 0) + 1
            body.append(row)
    return angle, body


def declared_rows(rows: Sequence[dict[str, str]], noise: float, per_listing: int, seed: int,
                  body_types: Sequence[str]) -> list[dict[str, str]]:
    """Body labels as ``import-labels --from-listings`` gives them: each car's exterior photos, its declared type.

    Each car is a listing whose seller declares its body type; a seeded ``noise`` share of the cars
    declare a wrong one (drawn from the other types), as sellers sometimes do. At most ``per_listing``
    photos a car (seeded), like the command's default cap.
    """
    wrong_rng, photo_rng = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 2])
    by_car: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        if row["body_type"]:
            by_car.setdefault(row["car"], []).append(row)
    out: list[dict[str, str]] = []
    for car in sorted(by_car):
        photos = by_car[car]
        declared = photos[0]["body_type"]
        draw, pick = wrong_rng.random(), int(wrong_rng.integers(len(body_types) - 1))
        if draw < noise:  # the same draws at every noise level: a higher level adds wrong cars
            declared = [b for b in body_types if b != declared][pick]
        take = photo_rng.permutation(len(photos))[:per_listing]
        out.extend({**photos[int(i)], "body_type": declared} for i in sorted(take))
    return out


def write_votes(path: Path, rows: Sequence[dict[str, str]], label_column: str) -> Path:
    """A votes CSV ``fleetvision import-labels --votes`` reads (one labeller)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "labeller", "label"])
        for row in rows:
            writer.writerow([row["image"], "standin", row[label_column]])
    return path


# ------------------------------------------------------------------------------------------ commands
class Runner:
    """Runs ``fleetvision`` commands against the temporary warehouse; logs each to its own file."""

    def __init__(self, work: Path, sets: Sequence[str]) -> None:
        self.work = work
        self.conf = work / "bench.yaml"
        self.sets = list(sets)
        self.commands: list[dict[str, Any]] = []
        work.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            "env: local\n"
            "spark:\n  master: \"local[2]\"\n  driver_memory: 3g\n  shuffle_partitions: 4\n"
            f"paths:\n  warehouse: {work / 'warehouse'}\n  photos: {work / 'warehouse' / 'photos'}\n"
            f"  artifacts: {work / 'artifacts'}\n  reports: {work / 'reports'}\n"
            f"mlflow:\n  tracking_uri: sqlite:///{work / 'mlflow.db'}\n  experiment: label-efficiency\n"
        )

    def __call__(
        self, name: str, args: Sequence[str], extra_sets: Sequence[str] = (), *, once_for: str | None = None
    ) -> float:
        """Run one command; with ``once_for`` (a digest of its inputs) a command already run on the same
        inputs into this warehouse (an import, the synthetic set) is skipped (returns 0)."""
        sets = [*self.sets, *extra_sets]
        argv = [*args, "--conf", str(self.conf), *[x for s in sets for x in ("--set", s)]]
        command = "fleetvision " + " ".join(shlex.quote(a) for a in argv)
        marker = self.work / "done" / f"{name}.sha256"
        key = hashlib.sha256(f"{command}\n{once_for}".encode()).hexdigest()
        if once_for is not None and marker.is_file() and marker.read_text() == key:
            logger.info("%s: already done on the same inputs, skipped", name)
            return 0.0
        log = self.work / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with log.open("w") as f:
            rc = subprocess.run([sys.executable, "-m", "fleetvision.cli", *argv], stdout=f, stderr=subprocess.STDOUT,
                                cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}).returncode
        seconds = time.perf_counter() - started
        self.commands.append({"name": name, "command": command, "seconds": round(seconds, 1), "rc": rc})
        logger.info("%s: %.0f s (rc %d) %s", name, seconds, rc, command)
        if rc != 0:
            raise RuntimeError(f"{name} failed (rc {rc}); see {log}")
        if once_for is not None:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(key)
        return seconds


# ------------------------------------------------------------------------------------------ scoring
class HeldOutScorer:
    """The held-out pool's backbone features (computed once) and the scores of any saved heads on them."""

    def __init__(self, standin: Path, starter: Path, driver_side: str) -> None:
        import keras

        from fleetvision.decode import decode_photo
        from fleetvision.models.efficientnet_lite import pretrained_backbone
        from fleetvision.models.pretrained import BACKBONE_FILE, FEATURE_MAPS
        from fleetvision.taxonomy import load_taxonomy

        self.keras = keras
        self.taxonomy = load_taxonomy()
        self.driver_side = driver_side
        self.meta = json.loads((starter / "angle" / BACKBONE_FILE).read_text())
        size = int(self.meta["input_size"])
        rows = read_pool(standin, "test")
        images, self.buckets, self.bodies = [], [], []
        for row in rows:
            photo = decode_photo((standin / "photos" / "test" / row["image"]).read_bytes(), size, 40_000_000)
            if photo.array is None:
                raise ValueError(f"held-out photo {row['image']} does not decode: {photo.error_code}")
            images.append(photo.array)
            self.buckets.append(row["bucket"])
            self.bodies.append(row["body_type"] or None)
        self.images = np.stack(images)
        backbone, _ = pretrained_backbone(self.meta["variant"], (size, size, 3))
        started = time.perf_counter()
        outs = [backbone.predict(np.stack(images[i : i + 32]).astype("float32"), verbose=0)
                for i in range(0, len(images), 32)]
        self.features = {name: np.concatenate([o[k] for o in outs]) for k, name in enumerate(FEATURE_MAPS)}
        self.feature_seconds = time.perf_counter() - started
        logger.info("held-out pool: %d photos, backbone features in %.1f s", len(images), self.feature_seconds)

    def score(self, heads_dir: Path) -> dict[str, float | int]:
        from fleetvision.models.coarse_metrics import coarse_scores
        from fleetvision.models.pretrained import BACKBONE_FILE, HEAD_FILE, HEAD_INPUTS, MODEL_FILE

        probs: dict[str, np.ndarray] = {}
        for task, output in (("angle", "angle"), ("body", "body")):
            folder = heads_dir / task  # a task the run left out is copied there from --init-from
            if not (folder / HEAD_FILE).is_file():  # a whole model (a fine-tuned backbone)
                model = self.keras.saving.load_model(folder / MODEL_FILE, compile=False)
                probs[task] = np.asarray(model.predict(self.images, verbose=0, batch_size=32)[output])
                continue
            meta = json.loads((folder / BACKBONE_FILE).read_text())
            if meta["weights_digest"] != self.meta["weights_digest"] or meta["input_size"] != self.meta["input_size"]:
                raise ValueError(f"{folder}: trained on another backbone or size than the starter")
            head = self.keras.saving.load_model(folder / HEAD_FILE, compile=False)
            out = head.predict([self.features[n] for n in HEAD_INPUTS[task]], verbose=0, batch_size=128)
            probs[task] = np.asarray(out[output] if isinstance(out, dict) else out)
        return coarse_scores(probs["angle"], self.buckets, self.taxonomy, self.driver_side,
                             body_probs=probs["body"], truth_body=self.bodies)


# ---------------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starter", type=Path, required=True, help="synthetic starter heads: <task>/head.keras")
    parser.add_argument("--work", type=Path, default=Path("/tmp/fv_labeleff"), help="temporary warehouse etc.")
    parser.add_argument(
        "--standin",
        type=Path,
        default=None,
        help="photos in the stand-in layout (photos/{train,test}/..., train.csv, test.csv with image, bucket, "
        "body_type, and optionally car, model); default <work>/standin, rendered if missing",
    )
    parser.add_argument("--old-src", type=Path, default=None, help="the old renderer's src/ (default: a worktree)")
    parser.add_argument("--train-cars", type=int, default=100)
    parser.add_argument("--test-cars", type=int, default=50)
    parser.add_argument("--counts", type=int, nargs="+", default=[10, 30, 100])
    parser.add_argument("--mix-count", type=int, default=30)
    parser.add_argument("--mix-weights", type=float, nargs="*", default=[0.1, 0.3, 1.0])
    parser.add_argument("--synthetic-per-class", type=int, default=40, help="synthetic rows rendered for mixing")
    parser.add_argument("--extra-max-rows", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--declared-noise", type=float, nargs="*", default=[],
                        help="also fine-tune on every train car's declared body type (import-labels --from-listings' "
                             "labels), with this share of cars declaring a wrong type; e.g. 0 0.1 0.3")
    parser.add_argument("--declared-per-listing", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="sets", action="append", default=[], help="more config overrides")
    parser.add_argument("--prepare-only", action="store_true", help="render and import only (no starter needed)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "label_efficiency.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    started = time.perf_counter()
    starter = args.starter.resolve()
    meta = json.loads((starter / "angle" / "backbone.json").read_text())
    sets = [f"models.backbone={meta['variant']}", f"models.input_size={meta['input_size']}", *BASE_SETS, *args.sets]
    run = Runner(args.work, sets)
    standin = (args.standin or args.work / "standin").resolve()
    if not (standin / "train.csv").is_file() or not (standin / "test.csv").is_file():
        render_standin(standin, args.old_src, args.train_cars, args.test_cars)
    train_rows, test_rows = read_pool(standin, "train"), read_pool(standin, "test")
    # the split check: no car (nor car model) on both sides, where the CSVs name them
    train_cars, test_cars = ({r.get("car") or "" for r in rows} - {""} for rows in (train_rows, test_rows))
    train_models, test_models = ({r.get("model") or "" for r in rows} - {""} for rows in (train_rows, test_rows))
    shared = (train_cars & test_cars) | (train_models & test_models)
    if shared:
        raise ValueError(f"the train and test pools share cars or car models: {sorted(shared)[:5]}")

    labels = args.work / "labels"

    def import_labels(name: str, pool: str, angle: Sequence[dict], body: Sequence[dict], dataset: str) -> None:
        images = str(standin / "photos" / pool)
        for task, rows, column in (("angle", angle, "bucket"), ("body", body, "body_type")):
            if not rows:
                continue
            votes = write_votes(labels / f"{name}_{task}.csv", rows, column)
            run(f"import-{name}-{task}", ["import-labels", "--task", task, "--votes", str(votes), "--images-dir",
                                          images, "--dataset", dataset], IMPORT_SETS,
                once_for=hashlib.sha256(votes.read_bytes()).hexdigest())

    import_labels("heldout", "test", test_rows, [r for r in test_rows if r["body_type"]], TEST_DATASET)
    body_types = sorted({r["body_type"] for r in train_rows if r["body_type"]})
    declared = {noise: declared_rows(train_rows, noise, args.declared_per_listing, args.seed, body_types)
                for noise in args.declared_noise}
    for noise, rows in declared.items():
        import_labels(f"declared{noise:g}", "train", [], rows, declared_dataset(noise, args.seed))
    counts = sorted(set(args.counts) | ({args.mix_count} if args.mix_weights else set()))
    pools = {count: select_labels(train_rows, count, args.seed) for count in counts}
    for count, (angle, body) in pools.items():
        import_labels(f"n{count}", "train", angle, body, pool_dataset(count, args.seed))
    if args.mix_weights:
        run("generate-synthetic", ["generate", "--training-set"],
            [f"synth.train_per_class={args.synthetic_per_class}", "synth.val_per_class=0"], once_for="")
    if args.prepare_only:
        logger.info("prepared %s (photos, imports, synthetic rows) in %.0f s", args.work, time.perf_counter() - started)
        return 0
    scorer = HeldOutScorer(standin, starter, "right")
    result: dict[str, Any] = {
        "what": "label efficiency on stand-in photos (old renderer d773b3f), fine-tuned from synthetic starter heads",
        "starter": str(starter),
        "backbone": meta,
        "standin": {"train_photos": len(train_rows), "test_photos": len(test_rows), "train_cars": len(train_cars),
                    "test_cars": len(test_cars), "split": "by car and by car model"},
        "epochs": args.epochs,
        "seed": args.seed,
        "sets": list(args.sets),
        "heldout_feature_seconds": round(scorer.feature_seconds, 1),
        "zero_labels": scorer.score(starter),
        "curve": [],
        "mixing": [],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }

    def save() -> None:
        result["commands"] = run.commands
        result["total_seconds"] = round(time.perf_counter() - started, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")

    def fine_tune(name: str, count: int, extra_sets: Sequence[str] = (), dataset: str | None = None) -> dict[str, Any]:
        out = args.work / "runs" / name
        training = dataset or pool_dataset(count, args.seed)
        seconds = run(name, ["train", "all", "--init-from", str(starter), "--epochs", str(args.epochs), "--no-eval",
                             "--out", str(out)], [f"models.training_dataset={training}", *extra_sets])
        return {"train_command_seconds": round(seconds, 1), **scorer.score(out)}

    result["declared"] = []
    true_type = {r["car"]: r["body_type"] for r in train_rows if r["body_type"]}
    for noise, rows in declared.items():
        wrong = sum(1 for r in rows if r["body_type"] != true_type[r["car"]])
        result["declared"].append({"noise": noise, "body_labels": len(rows), "body_labels_wrong": wrong,
                                   "cars": len({r["car"] for r in rows}), "per_listing": args.declared_per_listing,
                                   **fine_tune(f"train-declared{noise:g}", 0,
                                                dataset=declared_dataset(noise, args.seed))})
        save()

    for count, (angle, body) in pools.items():
        row = {"labels_per_class": count, "angle_labels": len(angle), "body_labels": len(body),
               **fine_tune(f"train-n{count}", count)}
        if count in args.counts:
            result["curve"].append(row)
        if count == args.mix_count:
            result["mixing"].append({"synthetic_weight": 0.0, **row})
        save()
    if args.mix_weights:
        for weight in args.mix_weights:
            extra = [f'models.extra_datasets={{"{SYNTHETIC_PREFIX}": {weight}}}',
                     f"models.extra_max_rows={args.extra_max_rows}"]
            row = fine_tune(f"train-n{args.mix_count}-syn{weight}", args.mix_count, extra)
            result["mixing"].append({"synthetic_weight": weight, "extra_max_rows": args.extra_max_rows,
                                     "labels_per_class": args.mix_count, **row})
            save()
    save()
    logger.info("wrote %s in %.0f s", args.out, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
