"""Configuration: precedence, and errors that name the key and where it came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetvision.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "test.yaml"
    p.write_text(text)
    return p


def test_local_profile_loads_with_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths resolve against the working directory
    cfg = load_config(environ={})
    assert cfg.env == "local"
    assert cfg.spark.master == "local[*]"
    assert cfg.mlflow.resolved_tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert cfg.paths.resolve("warehouse") == tmp_path / "warehouse"


def test_cluster_profile_loads_with_gpu_and_remote_paths() -> None:
    cfg = load_config(ROOT / "conf" / "cluster-gpu.yaml", environ={})
    assert cfg.spark.gpu.enabled and cfg.spark.master is None
    assert cfg.paths.is_remote("warehouse")
    assert cfg.paths.location("warehouse").startswith("s3a://")
    with pytest.raises(ValueError, match=r"paths.photos is a remote URI"):
        cfg.paths.resolve("photos")


def test_misspelled_key_names_the_key_the_file_and_a_suggestion(tmp_path: Path) -> None:
    p = _write(tmp_path, "scoring:\n  batch_sise: 32\n")
    with pytest.raises(ConfigError) as e:
        load_config(p, environ={})
    msg = str(e.value)
    assert "scoring.batch_sise" in msg
    assert str(p) in msg
    assert "did you mean 'batch_size'" in msg


def test_unknown_section_is_named(tmp_path: Path) -> None:
    p = _write(tmp_path, "scorng:\n  batch_size: 32\n")
    with pytest.raises(ConfigError, match=r"unknown key 'scorng'.*did you mean 'scoring'"):
        load_config(p, environ={})


def test_wrong_type_names_the_key_and_the_value(tmp_path: Path) -> None:
    p = _write(tmp_path, "spark:\n  shuffle_partitions: many\n")
    with pytest.raises(ConfigError, match=r"'spark.shuffle_partitions'.*many"):
        load_config(p, environ={})


def test_out_of_range_value_is_rejected(tmp_path: Path) -> None:
    p = _write(tmp_path, "scoring:\n  banner_threshold: 1.5\n")
    with pytest.raises(ConfigError, match=r"scoring.banner_threshold"):
        load_config(p, environ={})


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    p = _write(tmp_path, "scoring:\n  batch_size: 10\nspark:\n  shuffle_partitions: 3\n")
    cfg = load_config(
        p,
        overrides=["scoring.batch_size=30"],
        environ={"FLEETVISION__SCORING__BATCH_SIZE": "20", "FLEETVISION__SPARK__SHUFFLE_PARTITIONS": "7"},
    )
    assert cfg.scoring.batch_size == 30  # flag beats env beats file
    assert cfg.spark.shuffle_partitions == 7  # env beats file


def test_env_variable_with_a_bad_key_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"environment variable FLEETVISION__SCORING__NOPE"):
        load_config(environ={"FLEETVISION__SCORING__NOPE": "1"})


def test_flag_without_equals_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"expected section.key=value"):
        load_config(overrides=["scoring.batch_size"], environ={})


def test_missing_file_and_non_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file not found"):
        load_config(tmp_path / "nope.yaml", environ={})
    with pytest.raises(ConfigError, match=r"top level must be a mapping"):
        load_config(_write(tmp_path, "- a\n- b\n"), environ={})


def test_config_is_frozen() -> None:
    cfg = load_config(environ={})
    with pytest.raises(Exception, match="frozen"):
        cfg.scoring.batch_size = 3  # type: ignore[misc]


PROFILES = sorted(p.name for p in (ROOT / "conf").glob("*.yaml") if p.name != "taxonomy.yaml")


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_in_conf_loads(profile: str) -> None:
    cfg = load_config(ROOT / "conf" / profile, environ={})
    assert cfg.source == str(ROOT / "conf" / profile)


def test_the_production_example_leaves_the_master_and_sizes_to_spark_submit() -> None:
    assert "prod.example.yaml" in PROFILES
    cfg = load_config(ROOT / "conf" / "prod.example.yaml", environ={})
    assert cfg.spark.master is None  # spark-submit's --master or spark-defaults.conf decides
    assert not {k for k in cfg.spark.extra if k.startswith(("spark.executor.", "spark.driver."))}
    assert cfg.paths.is_remote("warehouse") and cfg.mlflow.tracking_uri.startswith("http")
