"""The render-realism benchmark (benchmarks/bench_render_realism.py), run small: 5 painter renders and one
real photo that a package ships (the path-traced renders and the real dev set stay outside CI)."""

from __future__ import annotations

import json

from PIL import Image
from script_modules import script_module


def test_renders_and_real_photos_get_a_car_mass(tmp_path):
    from skimage import data

    (tmp_path / "photos" / "plates").mkdir(parents=True)
    Image.fromarray(data.coffee()).save(tmp_path / "photos" / "plates" / "coffee.jpg")
    out = tmp_path / "realism.json"
    with script_module("benchmarks/bench_render_realism.py") as bench:
        assert bench.main(["--renderers", "painter", "--per-family", "1", "--seed", "5", "--cache",
                           str(tmp_path / "cache"), "--photos", str(tmp_path / "photos"), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    real, painter = result["real_photos"], result["renderers"]["painter"]
    assert real["n"] == 1 and real["car_mass_mean"] < 0.05 and real["top_is_car"] == 0.0  # a cup of coffee
    assert painter["n"] == 5 and set(painter["by_view"]) == {"full_front", "front_3q", "side", "rear_3q", "full_rear"}
    assert 0.0 <= painter["car_mass_mean"] <= 1.0 and sum(v["n"] for v in painter["by_body"].values()) == 5
    assert "--per-family 1" in result["command"]
