"""The pandas-UDF adapter: pure parts with stand-in models (tier 1), then the UDF in Spark (tier 2)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_score_job_support import BAD_KIND_CODES, OracleModels, StandInModelSet, bad_bytes, inferred_rows, photo_bytes

from fleetvision.config import load_config
from fleetvision.photo_uris import PhotoRoots
from fleetvision.scoring import ScoringRules
from fleetvision.scoring import udf as U
from fleetvision.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()
RULES = ScoringRules.default(TAXONOMY)
SETTINGS = U.UdfSettings(image_size=64, max_pixels=40_000_000, max_bytes=1 << 20, model_batch_size=3)


def _settings(tmp_path: Path) -> U.UdfSettings:
    """:data:`SETTINGS` with the test's folder as the one photo root."""
    return dataclasses.replace(SETTINGS, photo_roots=PhotoRoots((str(tmp_path),)))


@pytest.fixture(autouse=True)
def _fresh_worker_cache():
    U.clear_worker_models()
    yield
    U.clear_worker_models()


def _models(log_dir: Path | None = None) -> dict:
    return OracleModels({}, TAXONOMY, log_dir=str(log_dir) if log_dir else None)(StandInModelSet())


def _photos(tmp_path: Path) -> tuple[pd.Series, pd.Series, list[str | None]]:
    """Three good photos (two inline, one by uri) and every kind of bad file; expected error codes."""
    good = [photo_bytes(i, i, False) for i in range(3)]
    (tmp_path / "good.jpg").write_bytes(good[2])
    uris: list[str | None] = [None, None, (tmp_path / "good.jpg").as_uri()]
    contents: list[bytes | None] = [good[0], good[1], None]
    expected: list[str | None] = [None, None, None]
    for kind, code in BAD_KIND_CODES.items():
        data = bad_bytes(kind)
        if data is None:
            uris.append((tmp_path / "missing.jpg").as_uri())
            contents.append(None)
        else:
            uris.append(None)
            contents.append(data)
        expected.append(code)
    uris.append(None)
    contents.append(None)  # neither bytes nor uri
    expected.append("empty")
    return pd.Series(uris, dtype=object), pd.Series(contents, dtype=object), expected


# ------------------------------------------------------------------------------------------ tier 1
def test_hash_frame_hashes_the_bytes_wherever_they_are(tmp_path):
    uris, contents, expected = _photos(tmp_path)
    frame = U.hash_frame(uris, contents, max_bytes=1 << 20, roots=PhotoRoots((str(tmp_path),)))
    assert list(frame.columns) == [f.name for f in U.HASH_SCHEMA.fields]
    assert len(frame) == len(uris)
    assert frame.content_hash[0] == hashlib.sha256(contents[0]).hexdigest()
    assert frame.content_hash[2] == hashlib.sha256((tmp_path / "good.jpg").read_bytes()).hexdigest()
    missing = expected.index("unreadable_uri")
    assert frame.read_error_code[missing] == "unreadable_uri" and frame.content_hash[missing] is None
    assert "missing.jpg" in frame.read_error_detail[missing]
    assert frame.read_error_code.iloc[-1] == "empty" and frame.content_hash.iloc[-1] is None
    # bad bytes still have a hash: their decode error is a property of the bytes, cached like predictions
    assert frame.content_hash[expected.index("truncated")] is not None


def test_score_frame_gives_one_row_per_photo_with_error_codes(tmp_path):
    uris, contents, expected = _photos(tmp_path)
    frame = U.score_frame(uris, contents, _models(), _settings(tmp_path), TAXONOMY, RULES)
    assert list(frame.columns) == [f.name for f in U.PREDICTION_SCHEMA.fields]
    assert len(frame) == len(uris)
    assert frame.error_code.tolist() == expected
    assert (frame.decode_status == np.where(pd.isna(pd.Series(expected)), "ok", "error")).all()
    ok = frame[frame.decode_status == "ok"]
    assert ok.angle.notna().all() and ok.sharpness.notna().all()
    assert frame[frame.decode_status == "error"].angle.isna().all()
    threaded = dataclasses.replace(_settings(tmp_path), decode_threads=3)
    pd.testing.assert_frame_equal(U.score_frame(uris, contents, _models(), threaded, TAXONOMY, RULES), frame)


def test_run_models_runs_every_model_on_the_same_batch_in_chunks(tmp_path):
    seen: list[tuple[str, int]] = []

    def model(task: str, names: dict[str, int]):
        def predict(batch: np.ndarray) -> dict[str, np.ndarray]:
            seen.append((task, len(batch)))
            return {name: np.ones((len(batch), width)) for name, width in names.items()}

        return predict

    batch = np.zeros((7, 8, 8, 3), np.uint8)
    out = U.run_models({"a": model("a", {"x": 2}), "b": model("b", {"y": 1, "z": 3})}, batch, model_batch_size=3)
    assert {k: v.shape for k, v in out.items()} == {"x": (7, 2), "y": (7, 1), "z": (7, 3)}
    assert seen == [("a", 3), ("b", 3), ("a", 3), ("b", 3), ("a", 1), ("b", 1)]


def test_run_models_rejects_outputs_that_do_not_fit():
    batch = np.zeros((4, 8, 8, 3), np.uint8)
    short = {"angle": lambda b: {"angle": np.zeros((len(b) - 1, 27))}}
    with pytest.raises(ValueError, match=r"model 'angle' output 'angle' has shape \(3, 27\), expected 4 rows"):
        U.run_models(short, batch, 8)
    clash = {"a": lambda b: {"banner": np.zeros((len(b), 1))}, "b": lambda b: {"banner": np.zeros((len(b), 1))}}
    with pytest.raises(ValueError, match="both return an output named 'banner'"):
        U.run_models(clash, batch, 8)
    with pytest.raises(ValueError, match="returned list"):
        U.run_models({"a": lambda b: [1, 2]}, batch, 8)


def test_score_frame_checks_predictions_before_they_reach_arrow(tmp_path):
    uris, contents, _ = _photos(tmp_path)
    models = _models()
    models["banner"] = lambda b: {"banner": np.full((len(b), 1), 3.0, np.float32)}  # a logit, not a probability
    with pytest.raises(ValueError, match=r"'banner'.*probabilities"):
        U.score_frame(uris, contents, models, SETTINGS, TAXONOMY, RULES)
    models = _models()
    del models["body"]
    with pytest.raises(ValueError, match=r"lack.*body"):
        U.score_frame(uris, contents, models, SETTINGS, TAXONOMY, RULES)


def test_models_are_loaded_once_per_worker_and_model_set(tmp_path):
    calls: list[str] = []

    def loader(model_set):
        calls.append(model_set.model_set_id)
        return _models()

    first = U.worker_models(StandInModelSet(), loader)
    assert U.worker_models(StandInModelSet(), loader) is first
    U.worker_models(StandInModelSet(model_set_id="standin-2"), loader)
    assert calls == ["standin-1", "standin-2"]
    with pytest.raises(ValueError, match="returned no models"):
        U.worker_models(StandInModelSet(model_set_id="empty"), lambda ms: {})
    with pytest.raises(ValueError, match=r"\['angle'\] are not callable"):
        U.worker_models(StandInModelSet(model_set_id="junk"), lambda ms: {"angle": 3})


def test_udf_settings_come_from_config_and_reject_bad_values():
    config = load_config(environ={})
    settings = U.UdfSettings.from_config(config, environ={"FLEETVISION_FAIL_AT": "udf_first_attempt"})
    assert settings.image_size == config.models.input_size
    assert settings.model_batch_size == config.scoring.batch_size and settings.fail_first_attempt
    assert not U.UdfSettings.from_config(config, environ={}).fail_first_attempt
    assert settings.photo_roots.locations == (str(config.paths.resolve("photos")),)
    assert settings.max_declared_pixels == config.scoring.max_declared_pixels
    assert settings.decode_threads == config.scoring.decode_threads == 1
    assert settings.model_threads == config.scoring.model_threads == 0
    with pytest.raises(ValueError, match="decode_threads must be a positive int"):
        U.UdfSettings(image_size=64, max_pixels=10, max_bytes=10, model_batch_size=1, decode_threads=0)
    with pytest.raises(ValueError, match="model_batch_size must be a positive int"):
        U.UdfSettings(image_size=64, max_pixels=10, max_bytes=10, model_batch_size=0)
    with pytest.raises(ValueError, match="max_declared_pixels must be an int >= max_pixels"):
        U.UdfSettings(image_size=64, max_pixels=10, max_bytes=10, model_batch_size=1, max_declared_pixels=9)


_THREADS_PROBE = """
import json, os, sys
{prelude}
from fleetvision.scoring.udf import limit_model_threads
got = limit_model_threads({threads})
tf = sys.modules.get("tensorflow")
pools = None if tf is None else [tf.config.threading.get_intra_op_parallelism_threads(),
                                 tf.config.threading.get_inter_op_parallelism_threads()]
print(json.dumps([got, os.environ.get("TF_NUM_INTRAOP_THREADS"), os.environ.get("TF_NUM_INTEROP_THREADS"), pools]))
"""


def _probe_threads(threads: int, prelude: str = "", env: dict[str, str] | None = None) -> list:
    """Run :func:`limit_model_threads` in a fresh interpreter (TensorFlow's pools are per process, set once)."""
    import json
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if k not in (*U.TF_THREAD_ENV, "KERAS_BACKEND")}
    out = subprocess.run(
        [sys.executable, "-c", _THREADS_PROBE.format(prelude=prelude, threads=threads)],
        env={**clean, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_model_threads_are_set_before_tensorflow_starts_and_never_over_an_operators_choice():
    # not imported yet: the environment TensorFlow reads when its runtime starts
    assert _probe_threads(3) == [3, "3", "3", None]
    # imported, not started: its pools are set too
    assert _probe_threads(2, prelude="import tensorflow") == [2, "2", "2", [2, 2]]
    # started already: left as it is, said so, no error, and no environment left claiming a limit
    started = "import tensorflow as tf; tf.constant(1.0) + 1.0"
    assert _probe_threads(2, prelude=started) == [None, None, None, [0, 0]]
    # an operator's setting (spark.executorEnv) wins; another Keras backend is not TensorFlow's business
    assert _probe_threads(4, env={"TF_NUM_INTRAOP_THREADS": "8"}) == [None, "8", None, None]
    assert _probe_threads(4, env={"KERAS_BACKEND": "jax"}) == [None, None, None, None]
    # 0 means the Spark task's CPUs: outside a task there is nothing to go by
    assert _probe_threads(0) == [None, None, None, None]
    with pytest.raises(ValueError, match="model threads must be >= 0"):
        U.limit_model_threads(-1)
    with pytest.raises(ValueError, match="model_threads must be an int >= 0"):
        U.UdfSettings(image_size=64, max_pixels=10, max_bytes=10, model_batch_size=1, model_threads=-1)


# ------------------------------------------------------------------------------------------ tier 2
@pytest.mark.spark
def test_scoring_udf_in_spark_batches_by_arrow_and_loads_models_once_per_worker(spark, tmp_path):
    uris, contents, expected = _photos(tmp_path)
    n_copies = 4  # 40 rows over 2 partitions, Arrow batches of 3 rows: >= 14 batches
    rows = [
        (f"img-{k}-{i}", uris[i], bytearray(contents[i]) if contents[i] is not None else None)
        for k in range(n_copies)
        for i in range(len(uris))
    ]
    df = spark.createDataFrame(rows, "image_id string, uri string, content binary").repartition(2)
    loader = OracleModels({}, TAXONOMY, log_dir=str(tmp_path / "calls"))
    settings = _settings(tmp_path)
    score = U.make_scoring_udf(StandInModelSet(model_set_id=f"udf-{tmp_path.name}"), settings, TAXONOMY, RULES, loader)
    hash_photos = U.make_hash_udf(settings.max_bytes, roots=settings.photo_roots)
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    previous = spark.conf.get(key)
    spark.conf.set(key, "3")
    try:
        out = df.select("image_id", score("uri", "content").alias("p"), hash_photos("uri", "content").alias("h"))
        got = out.select("image_id", "p.error_code", "p.decode_status", "p.angle_top3", "h.content_hash").collect()
    finally:
        spark.conf.set(key, previous)
    assert sorted(r["image_id"] for r in got) == sorted(r[0] for r in rows)  # one row per input, none lost
    by_id = {r["image_id"]: r for r in got}
    for k in range(n_copies):
        assert [by_id[f"img-{k}-{i}"]["error_code"] for i in range(len(uris))] == expected
    ok = by_id["img-0-0"]
    assert ok["decode_status"] == "ok" and len(ok["angle_top3"]) == 3 and ok["angle_top3"][0]["label"]
    loads = inferred_rows(tmp_path / "calls", what="load")
    model_calls = sum(
        line.startswith("angle") for p in (tmp_path / "calls").glob("*.log") for line in p.read_text().splitlines()
    )
    assert model_calls >= 4 and 1 <= loads <= 2  # many batches, one load per Python worker
    # scoring.model_threads 0: each worker's TensorFlow gets the task's CPUs (spark.task.cpus = 1), not every core
    threads = {line for p in (tmp_path / "calls").glob("*.log") for line in p.read_text().splitlines()
               if line.startswith("threads")}
    assert threads == {"threads 1"}
