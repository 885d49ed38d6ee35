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
