"""The documented table schemas are the ones in code."""

from __future__ import annotations

from pathlib import Path

from fleetvision.tables import schema_markdown

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- BEGIN GENERATED SCHEMAS -->", "<!-- END GENERATED SCHEMAS -->"


def test_docs_tables_md_matches_the_schemas_in_code() -> None:
    text = (ROOT / "docs" / "tables.md").read_text()
    assert BEGIN in text and END in text, "docs/tables.md lost its generated-schema markers"
    documented = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert documented == schema_markdown().strip(), (
        "docs/tables.md is stale: regenerate with `make docs` (python -m fleetvision.tables)"
    )


def _spark_submit_lines(text: str) -> list[str]:
    """Every ``spark-submit ...`` command in a Markdown text, continuation lines joined."""
    joined = text.replace("\\\n", " ")
    return [" ".join(line.split()) for line in joined.splitlines() if line.strip().startswith("spark-submit ")]


def test_readme_and_runbook_name_only_files_that_exist() -> None:
    import re

    for doc in (ROOT / "README.md", ROOT / "docs" / "runbook.md"):
        named = set(re.findall(r"(?<![\w/.])((?:conf|jobs|scripts|docs)/[\w.-]+\.(?:yaml|py|sh|md))", doc.read_text()))
        missing = sorted(p for p in named if not (ROOT / p).is_file())
        assert not missing, f"{doc.name} names files that do not exist: {missing}"


def test_the_readmes_cluster_line_is_the_runbooks_and_pins_the_installed_delta() -> None:
    from importlib.metadata import version

    readme = _spark_submit_lines((ROOT / "README.md").read_text())
    runbook = _spark_submit_lines((ROOT / "docs" / "runbook.md").read_text())
    assert readme and set(readme) <= set(runbook)
    package = f"io.delta:delta-spark_2.13:{version('delta-spark')}"
    for line in readme + runbook:
        if "--packages" in line:
            assert package in line, f"--packages must name the installed delta-spark ({package}): {line}"
