"""What the package ships (fleetvision/resources): found through importlib.resources, equal to conf/."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetvision.config import default_config_path, load_config
from fleetvision.resources import DEFAULT_PROFILE, STARTER_MODELS, TAXONOMY, resource_path
from fleetvision.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", [DEFAULT_PROFILE, TAXONOMY])
def test_conf_copy_equals_the_shipped_file(name: str) -> None:
    # conf/ is the readers' copy; the package's file is what runs (edit it, then copy it to conf/)
    shipped, copy = resource_path(name), ROOT / "conf" / name
    assert shipped.is_file()
    assert copy.read_bytes() == shipped.read_bytes(), f"conf/{name} differs from {shipped}: copy the package's file"


def test_defaults_come_from_the_package_not_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_config_path() == resource_path(DEFAULT_PROFILE)
    cfg = load_config(environ={})
    assert cfg.env == "local" and cfg.spark.driver_memory == "6g"  # the profile's value, not the class default
    assert len(load_taxonomy().classes) == 27


def test_relative_paths_resolve_against_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "mine.yaml").write_text("paths:\n  warehouse: wh\nmlflow:\n  tracking_uri: sqlite:///db/mlflow.db\n")
    cfg = load_config(conf_dir / "mine.yaml", environ={})
    assert cfg.paths.resolve("warehouse") == tmp_path / "wh"  # not conf/wh: the file's folder plays no part
    assert cfg.paths.location("photos") == str(tmp_path / "warehouse" / "photos")
    assert cfg.mlflow.resolved_tracking_uri() == f"sqlite:///{tmp_path / 'db' / 'mlflow.db'}"


def test_starter_models_default_to_the_shipped_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(environ={})
    assert cfg.paths.starter_models is None
    shipped = cfg.paths.resolve("starter_models")
    assert shipped == resource_path(STARTER_MODELS)
    for task in cfg.models.tasks:  # either layout: a head on a pretrained backbone, or a whole model
        folder = shipped / task
        assert (folder / "head.keras").is_file() or (folder / "model.keras").is_file(), folder
    own = load_config(overrides=["paths.starter_models=my/starters"], environ={})
    assert own.paths.resolve("starter_models") == tmp_path / "my" / "starters"
