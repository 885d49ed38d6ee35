"""Which master and settings a session gets: spark-submit's win over the config (pure, no Spark)."""

from __future__ import annotations

from importlib.metadata import version
from types import SimpleNamespace

import pytest
from py4j.protocol import Py4JJavaError

from fleetvision.spark import (
    SOURCE_CONFIG,
    SOURCE_SPARK_DEFAULT,
    SOURCE_SPARK_DEFAULTS,
    SOURCE_SPARK_SUBMIT,
    DeltaJarsMissingError,
    ExecutorInfo,
    Placement,
    check_delta_classes,
    delta_fix,
    parse_spark_defaults,
    plan_session,
    read_spark_defaults,
    submit_args_master,
)

CONFIG = {"spark.sql.shuffle.partitions": "4", "spark.driver.memory": "6g", "spark.app.name": "fleetvision-score"}


def test_a_plain_run_applies_the_configs_master() -> None:
    plan = plan_session("local[*]", CONFIG, under_spark_submit=False, submitted={}, defaults={})
    assert (plan.master, plan.master_source, plan.apply_master) == ("local[*]", SOURCE_CONFIG, True)
    assert plan.settings == CONFIG
    assert plan.kept_from_submit == ()


def test_under_spark_submit_its_master_wins_and_the_configs_is_not_applied() -> None:
    submitted = {"spark.master": "spark://10.0.0.5:7077", "spark.submit.deployMode": "client"}
    plan = plan_session("local[*]", CONFIG, under_spark_submit=True, submitted=submitted, defaults={})
    assert (plan.master, plan.master_source, plan.apply_master) == ("spark://10.0.0.5:7077", SOURCE_SPARK_SUBMIT, False)
    assert "spark.master" not in plan.settings
    assert plan.kept_from_submit == ("spark.master",)


def test_under_spark_submit_its_conf_values_win_key_by_key() -> None:
    submitted = {"spark.master": "yarn", "spark.driver.memory": "2g", "spark.sql.shuffle.partitions": "4"}
    plan = plan_session(None, CONFIG, under_spark_submit=True, submitted=submitted, defaults={})
    assert plan.settings == {"spark.app.name": "fleetvision-score"}  # the rest was set by spark-submit
    # only a different value is worth naming; the config's master was unset, so it is not named either
    assert plan.kept_from_submit == ("spark.driver.memory",)


def test_a_master_from_spark_defaults_is_named_as_such() -> None:
    defaults = {"spark.master": "yarn", "spark.driver.memory": "8g"}
    submitted = {"spark.master": "yarn", "spark.driver.memory": "8g"}  # spark-submit read the same file
    under = plan_session("local[*]", CONFIG, under_spark_submit=True, submitted=submitted, defaults=defaults)
    assert (under.master, under.master_source, under.apply_master) == ("yarn", SOURCE_SPARK_DEFAULTS, False)
    # a plain run starts spark-submit itself, which reads spark-defaults.conf: it wins there too
    plain = plan_session("local[*]", CONFIG, under_spark_submit=False, submitted={}, defaults=defaults)
    assert (plain.master, plain.master_source, plain.apply_master) == ("yarn", SOURCE_SPARK_DEFAULTS, False)
    assert "spark.driver.memory" not in plain.settings
    assert plain.kept_from_submit == ("spark.driver.memory", "spark.master")


def test_a_master_given_to_spark_submit_beats_spark_defaults() -> None:
    defaults = {"spark.master": "yarn"}
    submitted = {"spark.master": "spark://h:7077"}
    plan = plan_session("local[*]", CONFIG, under_spark_submit=True, submitted=submitted, defaults=defaults)
    assert (plan.master, plan.master_source) == ("spark://h:7077", SOURCE_SPARK_SUBMIT)


def test_pyspark_submit_args_master_wins_in_a_plain_run() -> None:
    defaults = {"spark.master": "yarn"}
    plan = plan_session(
        "local[*]", CONFIG, under_spark_submit=False, submitted={}, defaults=defaults, submit_args_master="local[3]"
    )
    assert (plan.master, plan.master_source, plan.apply_master) == ("local[3]", SOURCE_SPARK_SUBMIT, False)


def test_a_submitted_conf_is_ignored_outside_spark_submit() -> None:
    plan = plan_session("local[2]", CONFIG, under_spark_submit=False, submitted={"spark.master": "yarn"}, defaults={})
    assert (plan.master, plan.master_source) == ("local[2]", SOURCE_CONFIG)


def test_nobody_names_a_master_spark_runs_local() -> None:
    plan = plan_session(None, CONFIG, under_spark_submit=False, submitted={}, defaults={})
    assert (plan.master, plan.master_source, plan.apply_master) == ("local[*]", SOURCE_SPARK_DEFAULT, False)


def test_spark_defaults_file_is_read_as_java_properties(tmp_path) -> None:
    text = "# comment\n! also a comment\n\nspark.master   spark://h:7077\nspark.a=1\nspark.b : two words\nspark.c\t3\n"
    assert parse_spark_defaults(text) == {
        "spark.master": "spark://h:7077",
        "spark.a": "1",
        "spark.b": "two words",
        "spark.c": "3",
    }
    (tmp_path / "spark-defaults.conf").write_text("spark.master yarn\n")
    assert read_spark_defaults({"SPARK_CONF_DIR": str(tmp_path)}) == {"spark.master": "yarn"}
    assert read_spark_defaults({"SPARK_CONF_DIR": str(tmp_path / "none")}) == {}


@pytest.mark.parametrize(
    ("args", "master"),
    [
        ("--master local[3] pyspark-shell", "local[3]"),
        ("--conf a=b --master=spark://h:7077 pyspark-shell", "spark://h:7077"),
        ("pyspark-shell", None),
        ("", None),
    ],
)
def test_master_in_pyspark_submit_args(args: str, master: str | None) -> None:
    assert submit_args_master({"PYSPARK_SUBMIT_ARGS": args}) == master


def test_the_delta_message_is_one_line_naming_the_package_and_the_jars() -> None:
    msg = delta_fix("2.13", "4.0.1")
    assert "\n" not in msg
    assert "--packages io.delta:delta-spark_2.13:4.0.1" in msg
    assert "--jars delta-spark_2.13-4.0.1.jar,delta-storage-4.0.1.jar" in msg


def _jvm_without_delta() -> SimpleNamespace:
    """A stand-in for py4j's view of a driver JVM without Delta's jars: every class lookup fails."""

    def class_for_name(name: str, initialize: bool, no_spark_class_loader: bool) -> None:
        raise Py4JJavaError(f"ClassNotFoundException: {name}", SimpleNamespace(_target_id="o1"))

    utils = SimpleNamespace(classForName=class_for_name)
    properties = SimpleNamespace(versionNumberString=lambda: "2.13.16")
    return SimpleNamespace(
        org=SimpleNamespace(apache=SimpleNamespace(spark=SimpleNamespace(util=SimpleNamespace(Utils=utils)))),
        scala=SimpleNamespace(util=SimpleNamespace(Properties=properties)),
    )


def test_check_delta_classes_names_the_installed_delta_version() -> None:
    with pytest.raises(DeltaJarsMissingError) as e:
        check_delta_classes(_jvm_without_delta())
    assert f"--packages io.delta:delta-spark_2.13:{version('delta-spark')}" in str(e.value)


def test_placement_says_master_source_and_executors() -> None:
    placement = Placement(
        "spark://127.0.0.1:7077",
        SOURCE_SPARK_SUBMIT,
        "app-1",
        (ExecutorInfo("0", "127.0.0.1:40001", 12), ExecutorInfo("1", "127.0.0.1:40002", 9)),
    )
    assert placement.describe() == (
        "spark://127.0.0.1:7077 (from spark-submit), app-1; "
        "executors 0@127.0.0.1:40001 (12 tasks), 1@127.0.0.1:40002 (9 tasks)"
    )
