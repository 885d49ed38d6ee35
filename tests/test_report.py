"""The run report: pure rendering from a hand-built ReportInputs (tier 1) and the job reading real tables
(tier 2, marked spark)."""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fleetvision.config import load_config
from fleetvision.scoring import ScoringRules
from fleetvision.scoring.checks import run_checks
from fleetvision.scoring.report import add_arguments, main, report_path
from fleetvision.scoring.report_html import ErrorSample, HeroSample, ReportInputs, render_report
from fleetvision.taxonomy import load_taxonomy

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)


def jpeg(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


def a_run(**changes: object) -> dict[str, object]:
    rules = ScoringRules.default(load_taxonomy())
    dq = run_checks(
        images_in=100,
        images_failed=30,
        images_scored=70,
        angle_counts={"boot": 40, "wheel": 30},
        previous_angle_counts={"boot": 35, "wheel": 35},
        rules=rules,
    )
    run: dict[str, object] = {
        "run_id": "run-7",
        "mode": "full",
        "status": "failed_dq",
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=90),
        "images_in": 100,
        "images_scored": 70,
        "images_cached": 0,
        "images_failed": 30,
        "model_set_id": "ms1",
        "model_versions": {"angle": "3"},
        "dq_passed": dq.passed,
        "dq_report": dq.to_json(stage_seconds={"decode": 12.5, "merge": 3.0}),
    }
    run.update(changes)
    return run


def test_report_is_one_self_contained_page() -> None:
    page = render_report(
        ReportInputs(
            a_run(),
            error_counts={"truncated": 20, "not_image": 10},
            error_samples={
                "truncated": [ErrorSample("img-1", None, "image file is truncated", "file:///p/1.jpg", b"\xff\xd8")],
                "not_image": [("img-2", None)],
            },
            score_values=[10.0, 55.5, 90.0],
            hero_samples=[
                HeroSample("L1", jpeg(), "front_3q_driver, banner-free", "img-9", 88.0, (jpeg(), None)),
                ("L2", jpeg((0, 0, 200)), "full_front, banner-free"),
            ],
            component_means={"required_shots": 0.5},
            top_reasons=[("add a boot photo", 3)],
            generated_at=T0,
        )
    )
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "run-7" in page and "failed_dq" in page and "breached" in page
    assert page.count("data:image/jpeg;base64,") == 3  # two heroes and one gallery thumbnail
    assert page.count("<svg") == 4  # stage times, score histogram, component means, shot labels
    assert "decode_error_rate 0.300 (30/100) &gt; max 0.100" in page
    assert "front_3q_driver, banner-free" in page and "add a boot photo" in page
    # nothing is fetched from anywhere: no external scripts, styles, images or fonts
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", page)
    assert "<script" not in page and "<link" not in page
    # the stage times came from the dq_report, in pipeline order
    assert page.index(">decode<") < page.index(">merge<")


def test_data_from_the_tables_is_escaped() -> None:
    hostile = "<script>alert('x')</script>"
    page = render_report(
        ReportInputs(
            a_run(run_id=hostile, message=hostile),
            error_counts={"not_image": 1},
            error_samples={"not_image": [ErrorSample(hostile, None, hostile, hostile, hostile.encode())]},
            hero_samples=[HeroSample(hostile, None, hostile)],
        )
    )
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page


def test_unknown_bytes_are_never_embedded() -> None:
    heroes = [("L1", b"<svg onload=alert(1)>", "r"), ("L2", b"\x00" * 10, "r")]
    page = render_report(ReportInputs(a_run(), hero_samples=heroes))
    assert "base64" not in page and page.count("no preview") == 2


def test_minimal_run_renders_with_no_data_notes() -> None:
    page = render_report(ReportInputs({"run_id": "r0"}))
    for note in (
        "no check results recorded",
        "no stage times recorded",
        "no listings scored in this run",
        "no shot labels recorded",
        "no photo failed to decode",
        "no hero picks in this run",
    ):
        assert note in page
    assert "unknown" in page  # status badge


def test_score_summary_numbers() -> None:
    page = render_report(ReportInputs(a_run(), score_values=np.array([0.0, 50.0, 100.0, np.nan])))
    assert ">3<" in page  # three finite scores
    assert ">50.0<" in page  # mean and median


def test_report_inputs_are_one_frozen_checked_value() -> None:
    inputs = ReportInputs(
        {"run_id": "r1"},
        error_samples={"truncated": [("img-1", None)]},
        hero_samples=[("L1", None, "no photos")],
        score_values=np.array([12.5, 80.0]),
        top_reasons=[("add a boot photo", 2)],
    )
    assert inputs.error_samples == {"truncated": (ErrorSample("img-1"),)}
    assert inputs.hero_samples == (HeroSample("L1", None, "no photos"),)
    assert inputs.score_values == (12.5, 80.0) and inputs.top_reasons == (("add a boot photo", 2),)
    with pytest.raises(FrozenInstanceError):
        inputs.run = {}  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"ReportInputs\.run must be a mapping, got list"):
        ReportInputs([("run_id", "r1")])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="render_report takes a ReportInputs, got dict"):
        render_report({"run_id": "r1"})  # type: ignore[arg-type]


def test_renderer_module_does_not_import_spark() -> None:
    code = (
        "import sys; import fleetvision.scoring.report_html as r; "
        "page = r.render_report(r.ReportInputs({'run_id': 'r9', 'status': 'succeeded'})); "
        "assert 'r9' in page, page[:200]; "
        "print(sorted(m for m in sys.modules if m == 'pyspark' or m.startswith('pyspark.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_job_arguments_and_paths(tmp_path: object) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--run-id", "abc", "--out", "/tmp/x.html"])
    assert (args.run_id, args.out) == ("abc", "/tmp/x.html")
    assert parser.parse_args([]).run_id is None
    config = load_config(overrides=[f"paths.reports={tmp_path}"], environ={})
    assert report_path(config, "2025/03 01:x") == f"{tmp_path}/run-2025_03_01_x.html"
    with pytest.raises(ValueError, match="needs a SparkSession"):
        main(None, config, args)


# ----------------------------------------------------------------------------------------- tier 2
@pytest.mark.spark
def test_report_job_reads_the_tables_and_writes_the_page(spark, config, tmp_path) -> None:
    from fleetvision.tables import (
        HERO_IMAGES,
        IMAGE_TAGS,
        LISTING_COMPLETENESS,
        LISTING_IMAGES,
        SCORING_RUNS,
        ensure_tables,
        qualified,
    )

    db = config.tables.database
    ensure_tables(spark, db, [LISTING_IMAGES, IMAGE_TAGS, LISTING_COMPLETENESS, HERO_IMAGES, SCORING_RUNS])
    on_disk = Path(config.paths.photos) / "hero.jpg"  # uris are read inside paths.photo_roots only
    on_disk.parent.mkdir(parents=True, exist_ok=True)
    on_disk.write_bytes(jpeg((0, 160, 0)))
    images = [
        ("i1", "L1", 0, on_disk.as_uri(), None, T0),
        ("i2", "L1", 1, None, b"<html>gone</html>", T0),
        ("i3", "L1", 2, None, jpeg(), T0),
    ]
    spark.createDataFrame(images, LISTING_IMAGES.schema).write.insertInto(qualified(db, LISTING_IMAGES))

    def tag(image_id: str, status: str, code: str | None) -> tuple:
        values = {f.name: None for f in IMAGE_TAGS.schema.fields}
        values.update(
            image_id=image_id,
            listing_id="L1",
            decode_status=status,
            error_code=code,
            error_detail="not a recognised image" if code else None,
            scored_at=T0,
            run_id="r1",
        )
        return tuple(values[f.name] for f in IMAGE_TAGS.schema.fields)

    tags = [tag("i1", "ok", None), tag("i2", "error", "not_image"), tag("i3", "ok", None)]
    spark.createDataFrame(tags, IMAGE_TAGS.schema).write.insertInto(qualified(db, IMAGE_TAGS))
    comp = {f.name: None for f in LISTING_COMPLETENESS.schema.fields}
    comp.update(
        listing_id="L1",
        n_photos=3,
        n_scored=2,
        n_failed=1,
        n_exterior=2,
        n_interior=0,
        n_detail=0,
        completeness_score=42.0,
        components={"required_shots": 0.25},
        reasons=["add a boot photo"],
        scorer_version="1.x",
        computed_at=T0,
        run_id="r1",
    )
    spark.createDataFrame([tuple(comp.values())], LISTING_COMPLETENESS.schema).write.insertInto(
        qualified(db, LISTING_COMPLETENESS)
    )
    hero = ("L1", "i1", "front_3q_driver, banner-free", ["i1", "i3"], [], "1.x", T0, "r1")
    spark.createDataFrame([hero], HERO_IMAGES.schema).write.insertInto(qualified(db, HERO_IMAGES))
    run = {f.name: None for f in SCORING_RUNS.schema.fields}
    run.update(
        run_id="r1",
        mode="full",
        status="succeeded",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=5),
        images_in=3,
        images_failed=1,
        dq_passed=True,
        dq_report=json.dumps({"stage_seconds": {"decode": 1.0}}),
    )
    spark.createDataFrame([tuple(run.values())], SCORING_RUNS.schema).write.insertInto(qualified(db, SCORING_RUNS))

    args = argparse.Namespace(run_id=None, out=None)
    assert main(spark, config, args) == 0
    page = (config.paths.resolve("reports") / "run-r1.html").read_text()
    assert "front_3q_driver, banner-free" in page and "add a boot photo" in page
    assert page.count("data:image/jpeg;base64,") == 3  # hero from its uri, two gallery thumbnails (uri + inline)
    assert "3c 68 74 6d 6c 3e" in page  # the failed photo's first bytes: "<html>"
    assert main(spark, config, argparse.Namespace(run_id="nope", out=None)) == 1
