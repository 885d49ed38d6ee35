"""Regenerate the generated parts of the docs (table schemas) from code."""

from __future__ import annotations

from pathlib import Path

from fleetvision.tables import schema_markdown

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- BEGIN GENERATED SCHEMAS -->", "<!-- END GENERATED SCHEMAS -->"


def main() -> None:
    path = ROOT / "docs" / "tables.md"
    text = path.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{schema_markdown().strip()}\n{END}{tail}")


if __name__ == "__main__":
    main()
