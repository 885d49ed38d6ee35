"""Hand-made ``image_tags`` rows for the listing-level tests (test_completeness, test_hero, test_tags).

No tests here: one builder, so the tests of completeness, hero picks and tag conversion describe
photos the same way the scoring UDF writes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from fleetvision.taxonomy import Taxonomy

GOOD_SHARPNESS = 0.01  # above scoring.sharpness_good: full quality at normal exposure


def photo(
    taxonomy: Taxonomy,
    image_id: str,
    angle: str | None,
    *,
    banner: bool = False,
    ok: bool = True,
    content_hash: str | None = None,
    body: str = "sedan",
    body_score: float = 0.9,
    plate: bool = False,
    sharpness: float = GOOD_SHARPNESS,
    brightness: float = 0.5,
    angle_score: float = 0.9,
    code: str = "truncated",
    listing_id: str = "L1",
) -> dict[str, Any]:
    """One image_tags row as the scoring UDF writes it (a failed decode has ``code`` and no predictions)."""
    group = taxonomy[angle].group if (ok and angle) else None
    return {
        "image_id": image_id,
        "listing_id": listing_id,
        "content_hash": content_hash or f"h-{image_id}",
        "decode_status": "ok" if ok else "error",
        "error_code": None if ok else code,
        "angle": angle if ok else None,
        "angle_score": angle_score if ok else np.nan,
        "shot_group": group,
        "banner_flag": banner if ok else None,
        "banner_score": (0.9 if banner else 0.1) if ok else np.nan,
        "plate_flag": plate if ok else None,
        "body_type": body if (ok and group == "exterior") else None,
        "body_score": body_score if (ok and group == "exterior") else np.nan,
        "sharpness": sharpness if ok else np.nan,
        "brightness": brightness if ok else np.nan,
    }


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows in the seller's order (position = list index)."""
    df = pd.DataFrame(rows)
    df["position"] = range(len(df))
    return df


def spark_arrow(df: pd.DataFrame, schema: Any) -> pa.Table:
    """Convert a pandas frame the way pandas UDFs do (Spark's converter, then Arrow with the schema's types)."""
    from pyspark.sql.pandas.types import _create_converter_from_pandas, to_arrow_type

    arrays = []
    for field in schema.fields:
        conv = _create_converter_from_pandas(field.dataType, timezone="UTC", error_on_duplicated_field_names=False)
        series = conv(df[field.name])
        mask = None if hasattr(series.array, "__arrow_array__") else series.isnull()
        arrays.append(pa.Array.from_pandas(series, mask=mask, type=to_arrow_type(field.dataType), safe=True))
    return pa.Table.from_arrays(arrays, names=[f.name for f in schema.fields])
