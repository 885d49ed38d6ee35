"""scripts/gpu_decode.py, the GPU decode measurement of the GPU check: where it cannot run, it says why."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from script_modules import script_module

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_decode():
    with script_module("scripts/gpu_decode.py") as module:
        yield module


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="this machine has torchvision")
def test_without_torchvision_the_report_says_why_and_nothing_is_raised(gpu_decode, tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"\xff\xd8\xff" + b"\x00" * 64)
    report = gpu_decode.measure_gpu_decode([photo], 224, seconds=0.01)
    assert report["available"] is False and "No module named" in report["why"]
    assert "torch" in report["why"]
    json.dumps(report)  # goes into the check's JSON as it is


def test_only_files_the_decoder_reads_as_jpeg_go_to_nvjpeg(gpu_decode):
    import sys

    sys.path.insert(0, str(ROOT / "src"))
    jpeg, png = b"\xff\xd8\xff\xe0" + b"\x00" * 16, b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    assert gpu_decode.jpeg_only([png, jpeg, b"", jpeg]) == [jpeg, jpeg]
