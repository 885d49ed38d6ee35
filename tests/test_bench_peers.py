"""The peers benchmark's pure parts: the ratio table of peers.json and how processes are counted.

The benchmark itself (``make bench-peers``) needs its own venv and minutes per method; these run in CI.
"""

from __future__ import annotations

import pytest
from script_modules import script_module


@pytest.fixture(scope="module")
def peer_work():
    with script_module("benchmarks/peers/peer_work.py") as module:
        yield module


def test_rates_and_ratios_are_against_the_floor_and_a_failed_method_is_kept(peer_work):
    table = peer_work.peers_table(
        {
            "plain_loop": {"photos": 1000, "seconds": 50.0},
            "spark_pandas_udf": {"photos": 1000, "seconds": 40.0},
            "ray_data": {"photos": 1000, "seconds": None, "error": "exit 1"},
        }
    )
    assert table["plain_loop"]["photos_per_second"] == 20.0
    assert table["plain_loop"]["ratio_to_floor"] == 1.0
    assert table["spark_pandas_udf"]["photos_per_second"] == 25.0
    assert table["spark_pandas_udf"]["ratio_to_floor"] == 1.25
    assert table["ray_data"]["photos_per_second"] is None
    assert table["ray_data"]["error"] == "exit 1"


def test_without_a_floor_there_are_rates_but_no_ratios(peer_work):
    table = peer_work.peers_table({"daft": {"photos": 300, "seconds": 100.0}})
    assert table["daft"]["photos_per_second"] == 3.0
    assert table["daft"]["ratio_to_floor"] is None


@pytest.mark.parametrize("photos, seconds", [(0, 1.0), (10, 0.0), (None, 1.0)])
def test_a_finished_method_needs_photos_and_time(peer_work, photos, seconds):
    with pytest.raises(ValueError, match="method 'x'"):
        peer_work.peers_table({"x": {"photos": photos, "seconds": seconds}})


def test_process_roles(peer_work):
    role = peer_work.process_role
    assert role("python", ["python", "run_engine.py"], True) == "driver"
    assert role("java", ["/usr/lib/jvm/java-17/bin/java", "-cp", "x"], False) == "jvm"
    assert role("raylet", ["/venv/lib/ray/core/src/ray/raylet/raylet", "--x"], False) == "infra"
    assert role("python", ["python", "/venv/lib/ray/_private/workers/default_worker.py"], False) == "worker"
    assert role("ray::RayScorer", ["ray::RayScorer.__call__"], False) == "worker"
    assert role("python", ["python", "-m", "pyspark.daemon", "pyspark.worker"], False) == "worker"


def test_work_settings_round_trip_and_reject_bad_sizes(peer_work):
    s = peer_work.WorkSettings("/m", "/p", 224, 40_000_000, 250_000_000, 64 << 20, 256, 64)
    assert peer_work.WorkSettings.from_json(s.to_json()) == s
    with pytest.raises(ValueError, match="model_batch"):
        peer_work.WorkSettings("/m", "/p", 224, 40_000_000, 250_000_000, 64 << 20, 256, 0)


def test_rounds_alternate_their_order(peer_work):
    methods = ["a", "b", "c"]
    assert [peer_work.round_order(methods, i) for i in range(3)] == [["a", "b", "c"], ["c", "b", "a"], ["a", "b", "c"]]
    assert methods == ["a", "b", "c"]


def test_a_method_reports_its_median_reading_and_keeps_them_all(peer_work):
    readings = [
        {"seconds": 130.0, "photos": 100, "peak_rss_mib_per_worker": 1700, "load_average_1m_before": 1.0},
        {"seconds": 150.0, "photos": 100, "peak_rss_mib_per_worker": 1900, "load_average_1m_before": 2.0},
        {"seconds": None, "error": "exit 1", "peak_rss_mib_per_worker": 2100},
        {"seconds": 120.0, "photos": 100, "peak_rss_mib_per_worker": 1800, "load_average_1m_before": 3.0},
    ]
    out = peer_work.combine_readings(readings)
    assert out["seconds"] == 130.0  # the median of 120, 130, 150; the failed reading does not count
    assert out["load_average_1m_before"] == 1.0  # fields come from the median reading
    assert out["readings_seconds"] == [130.0, 150.0, 120.0]
    assert (out["readings"], out["readings_failed"]) == (4, 1)
    assert out["peak_rss_mib_per_worker"] == 2100  # the most memory any reading took
    # an even count reports the lower middle: a reading that happened, not an average of two
    assert peer_work.combine_readings(readings[:2])["seconds"] == 130.0


def test_a_method_whose_readings_all_failed_keeps_the_error(peer_work):
    out = peer_work.combine_readings([{"seconds": None, "error": "exit 1"}, {"seconds": None, "error": "exit 2"}])
    assert out["error"] == "exit 2" and out["readings_failed"] == 2
    assert peer_work.peers_table({"x": out})["x"]["photos_per_second"] is None
    with pytest.raises(ValueError, match="at least one reading"):
        peer_work.combine_readings([])


def test_head_to_head_compares_readings_of_the_same_round(peer_work):
    rounds = [
        {"udf": {"seconds": 100.0}, "pbu": {"seconds": 110.0}, "ray": {"seconds": 90.0}},
        {"udf": {"seconds": 120.0}, "pbu": {"seconds": 108.0}, "ray": {"seconds": 130.0}},
        {"udf": {"seconds": 100.0}, "pbu": {"seconds": 105.0}, "ray": {"seconds": None, "error": "x"}},
    ]
    h = peer_work.head_to_head(rounds, "udf", ["pbu", "ray", "daft"])
    assert (h["pbu"]["rounds"], h["pbu"]["wins"], h["pbu"]["median_speed_ratio"]) == (3, 2, 1.05)
    assert (h["ray"]["rounds"], h["ray"]["wins"]) == (2, 1)
    assert h["ray"]["median_speed_ratio"] == pytest.approx((0.9 + 130 / 120) / 2, abs=1e-3)
    assert h["daft"] == {"rounds": 0, "wins": 0, "median_speed_ratio": None}
