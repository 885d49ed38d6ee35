"""``fleetvision import-labels`` with real files in a temporary folder: folder-per-class and votes CSV."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fleetvision.config import load_config
from fleetvision.label_consensus import (
    NO_MAJORITY,
    NOT_IMAGE,
    TOO_FEW_VOTES,
    UNKNOWN_LABEL,
    Vote,
    consensus,
    label_vocabulary,
    read_votes,
)
from fleetvision.label_rows import ImportRequest, plan_import, prepare_photo, split_for
from fleetvision.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()


def _write_photo(path: Path, seed: int, size: tuple[int, int] = (80, 60), orientation: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    im = Image.fromarray(arr)
    if orientation is None:
        im.save(path, "JPEG")
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        im.save(path, "JPEG", exif=exif)


def _args(**kw) -> argparse.Namespace:
    base = {"folder": None, "votes": None, "images_dir": None, "task": "angle", "dataset": None, "report": None}
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.fixture()
def cfg(tmp_path: Path):
    return load_config(
        overrides=[
            f"paths.reports={tmp_path / 'reports'}",
            "models.consensus_min_votes=3",
            "models.import_max_side=64",
            "models.import_eval_fraction=0.3",
        ],
        environ={},
    )


@pytest.fixture()
def photo_folder(tmp_path: Path) -> Path:
    root = tmp_path / "labelled"
    for i in range(3):
        _write_photo(root / "boot" / f"b{i}.jpg", i)
        _write_photo(root / "Side Driver" / f"s{i}.jpg", 10 + i)  # spelled loosely: still side_driver
    _write_photo(root / "spaceship" / "x.jpg", 20)
    _write_photo(root / "loose.jpg", 21)
    (root / "boot" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "boot" / "notes.txt").write_text("ignored")
    _write_photo(root / "dashboard" / "rotated.jpg", 30, size=(40, 20), orientation=6)
    _write_photo(root / "dashboard" / "huge.jpg", 31, size=(300, 100))
    return root


def test_folder_import_labels_and_report(photo_folder: Path, cfg) -> None:
    rows, report = plan_import(ImportRequest(folder=photo_folder), cfg, TAXONOMY)
    assert report.accepted == len(rows) == 8
    assert report.by_label == {"boot": 3, "side_driver": 3, "dashboard": 2}
    reasons = {d.image: d.reason for d in report.dropped}
    assert reasons == {"spaceship/x.jpg": UNKNOWN_LABEL, "loose.jpg": UNKNOWN_LABEL, "boot/broken.jpg": NOT_IMAGE}
    row = next(r for r in rows if r["angle"] == "side_driver")
    assert row["angle_index"] == TAXONOMY.index("side_driver")
    assert (row["has_banner"], row["plate_present"], row["body_index"], row["plate_box"]) == (-1, -1, -1, [])
    assert row["dataset"] == f"folder:{photo_folder.resolve()}" and row["source"] == "folder"
    assert {r["split"] for r in rows} <= {"train", "eval"} and len({r["sample_id"] for r in rows}) == 8
    payload = json.loads(report.to_json())
    assert payload["dropped_by_reason"] == {NOT_IMAGE: 1, UNKNOWN_LABEL: 2}


def test_photos_are_stored_upright_and_bounded(photo_folder: Path) -> None:
    data, detail = prepare_photo(photo_folder / "dashboard" / "rotated.jpg", 64)
    assert data is not None and detail.startswith("re-encoded")
    assert Image.open(io.BytesIO(data)).size == (20, 40)  # orientation 6: rotated upright
    data, _ = prepare_photo(photo_folder / "dashboard" / "huge.jpg", 64)
    assert max(Image.open(io.BytesIO(data)).size) == 64
    original = (photo_folder / "boot" / "b0.jpg").read_bytes()
    assert prepare_photo(photo_folder / "boot" / "b0.jpg", 128) == (original, "kept")


def test_split_is_stable() -> None:
    splits = [split_for(f"img{i}.jpg", 0.2, 0.1) for i in range(400)]
    assert splits == [split_for(f"img{i}.jpg", 0.2, 0.1) for i in range(400)]
    share = {s: splits.count(s) / 400 for s in ("train", "val", "eval")}
    assert 0.12 < share["eval"] < 0.28 and 0.04 < share["val"] < 0.17


def test_consensus_rule() -> None:
    vocab = label_vocabulary("angle", TAXONOMY)
    votes = [
        # a: 3 of 4 agree -> accepted
        *(Vote("a.jpg", f"u{i}", "boot") for i in range(3)),
        Vote("a.jpg", "u9", "dashboard"),
        # b: 2 agree, N=3 -> too few
        Vote("b.jpg", "u1", "boot"),
        Vote("b.jpg", "u2", "boot"),
        Vote("b.jpg", "u3", "wheel"),
        # c: 3 vs 3 -> no majority
        *(Vote("c.jpg", f"u{i}", "boot") for i in range(3)),
        *(Vote("c.jpg", f"v{i}", "wheel") for i in range(3)),
        # d: one labeller voting 3 times counts once
        *(Vote("d.jpg", "u1", "boot") for _ in range(3)),
        Vote("d.jpg", "u2", "boot"),
        # e: unknown labels only
        Vote("e.jpg", "u1", "spaceship"),
        # f: 3 agree, 2 unknown votes ignored, 1 other -> 3 of 4 valid: accepted
        *(Vote("f.jpg", f"u{i}", "Side Driver") for i in range(3)),
        Vote("f.jpg", "x", "nonsense"),
        Vote("f.jpg", "y", "nonsense"),
        Vote("f.jpg", "z", "side_passenger"),
        # g: 3 agree of 6 valid: not a strict majority
        *(Vote("g.jpg", f"u{i}", "boot") for i in range(3)),
        Vote("g.jpg", "v1", "wheel"),
        Vote("g.jpg", "v2", "keys"),
        Vote("g.jpg", "v3", "badge"),
    ]
    result = consensus(votes, vocab, min_votes=3)
    assert result.accepted == {"a.jpg": ("boot", 3), "f.jpg": ("side_driver", 3)}
    reasons = {d.image: d.reason for d in result.dropped}
    assert reasons == {
        "b.jpg": TOO_FEW_VOTES,
        "c.jpg": NO_MAJORITY,
        "d.jpg": TOO_FEW_VOTES,
        "e.jpg": UNKNOWN_LABEL,
        "g.jpg": NO_MAJORITY,
    }
    assert result.votes_unknown_label == 3 and result.votes_superseded == 2
    with pytest.raises(ValueError, match="min_votes must be >= 1"):
        consensus(votes, vocab, 0)


def test_votes_csv_import(tmp_path: Path, cfg) -> None:
    images = tmp_path / "photos"
    for seed, name in enumerate(("p1", "p2", "p3")):
        _write_photo(images / f"{name}.jpg", 50 + seed)
    csv_path = tmp_path / "votes.csv"
    lines = ["image,labeller,label"]
    lines += [f"p1.jpg,u{i},sedan" for i in range(4)]  # accepted
    lines += [f"p2.jpg,u{i},suv" for i in range(2)]  # too few
    lines += [f"missing.jpg,u{i},ute" for i in range(3)]  # no file
    lines += [f"p3.jpg,u{i},van" for i in range(3)] + ["p3.jpg,u7,wagon"]  # accepted
    csv_path.write_text("\n".join(lines) + "\n")
    rows, report = plan_import(ImportRequest(votes=(csv_path,), images_dir=images, task="body"), cfg, TAXONOMY)
    assert sorted((r["body_type"], r["body_index"]) for r in rows) == [
        ("sedan", TAXONOMY.body_index("sedan")),
        ("van", TAXONOMY.body_index("van")),
    ]
    assert all(r["angle_index"] == -1 and r["source"] == "votes" for r in rows)
    assert report.dropped_by_reason == {"missing_file": 1, TOO_FEW_VOTES: 1}
    assert report.votes_total == 13 and report.consensus_min_votes == 3
    with pytest.raises(ValueError, match="needs --images-dir"):
        plan_import(ImportRequest(votes=(csv_path,), task="body"), cfg, TAXONOMY)
    bad = tmp_path / "bad.csv"
    bad.write_text("photo,who,label\nx,y,z\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['image', 'labeller'\]"):
        read_votes(bad)


def test_command_line_becomes_one_checked_import_request(tmp_path: Path) -> None:
    from fleetvision.labels_import import import_request

    folder = import_request(_args(folder=str(tmp_path / "labelled"), dataset="mine"))
    assert folder == ImportRequest(folder=tmp_path / "labelled", dataset="mine")
    assert folder.folder is not None and folder.folder.is_absolute() and folder.votes == ()
    votes = import_request(_args(votes=["a.csv", "b.csv"], images_dir=str(tmp_path), task="body"))
    assert votes.votes == (Path("a.csv").resolve(), Path("b.csv").resolve()) and votes.task == "body"
    assert ImportRequest(votes="a.csv", images_dir=tmp_path).votes == (Path("a.csv").resolve(),)
    with pytest.raises(ValueError, match="exactly one of a label folder"):
        ImportRequest(folder=tmp_path, votes=("a.csv",), images_dir=tmp_path)
    with pytest.raises(ValueError, match="exactly one of a label folder"):
        ImportRequest()
    with pytest.raises(ValueError, match="unknown task 'colour'"):
        ImportRequest(task="colour", folder=tmp_path)


def test_pure_label_modules_do_not_import_spark() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import fleetvision.label_consensus, fleetvision.label_rows, fleetvision.labels_import, "
        "fleetvision.declared_labels; "
        "print(sorted(m for m in sys.modules if m == 'pyspark' or m.startswith('pyspark.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.spark
def test_import_job_writes_training_images_idempotently(spark, config, photo_folder: Path, tmp_path: Path) -> None:
    from fleetvision import labels_import
    from fleetvision.tables import TRAINING_IMAGES, qualified

    report = tmp_path / "report.json"
    args = _args(folder=str(photo_folder), dataset="folder:test", report=report)
    assert labels_import.main(spark, config, args) == 0
    assert labels_import.main(spark, config, args) == 0  # re-run: same rows
    table = spark.table(qualified(config.tables.database, TRAINING_IMAGES))
    assert table.count() == 8
    assert {r["angle"] for r in table.select("angle").collect()} == {"boot", "side_driver", "dashboard"}
    assert json.loads(report.read_text())["accepted"] == 8
    empty = tmp_path / "empty"
    empty.mkdir()
    assert labels_import.main(spark, config, _args(folder=str(empty), report=tmp_path / "r2.json")) == 1
    assert labels_import.main(spark, config, _args(folder=str(tmp_path / "nope"))) == 2
