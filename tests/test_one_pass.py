"""Hash and score in one pass: the pure frame against the two-pass composition, and when a run uses it."""

from __future__ import annotations

import pandas as pd
import pytest
from test_udf import RULES, TAXONOMY, _models, _photos, _settings

from fleetvision.scoring import one_pass as P
from fleetvision.scoring import udf as U


def _two_pass(uris: pd.Series, contents: pd.Series, settings: U.UdfSettings) -> pd.DataFrame:
    """What a two-pass run stages for the same photos: the hash columns, then the staged bytes scored."""
    hashed = U.hash_frame(uris, contents, settings.max_bytes, settings.remote_options, settings.photo_roots)
    readable = hashed.content_hash.notna()
    scored = U.score_frame(
        pd.Series([None] * int(readable.sum()), dtype=object),
        hashed.photo_bytes[readable].reset_index(drop=True),
        _models(),
        settings,
        TAXONOMY,
        RULES,
    )
    scored.index = hashed.index[readable]
    return pd.concat([hashed[list(P.HASH_COLUMNS)], scored], axis=1)


def test_one_pass_frame_is_the_two_pass_result_row_for_row(tmp_path):
    uris, contents, expected = _photos(tmp_path)  # good photos inline and by uri, every kind of broken file
    settings = _settings(tmp_path)
    frame = P.hash_and_score_frame(uris, contents, _models(), settings, TAXONOMY, RULES)
    assert list(frame.columns) == [f.name for f in P.ONE_PASS_SCHEMA.fields]
    assert "photo_bytes" not in frame.columns and len(frame) == len(uris)
    two = _two_pass(uris, contents, settings)
    for column in frame.columns:
        assert [None if pd.isna(v) is True else v for v in frame[column]] == [
            None if pd.isna(v) is True else v for v in two[column]
        ], column
    # a read error keeps its code and no prediction; a decode error is in the prediction columns, as staged
    missing = expected.index("unreadable_uri")
    assert frame.read_error_code[missing] == "unreadable_uri" and frame.decode_status[missing] is None
    truncated = expected.index("truncated")
    assert frame.content_hash[truncated] is not None and frame.error_code[truncated] == "truncated"
    assert frame.read_error_code.iloc[-1] == "empty" and frame.angle.iloc[-1] is None
    assert (frame.decode_status[:3] == "ok").all() and frame.angle[:3].notna().all()


def test_one_pass_frame_with_only_good_or_only_unreadable_photos(tmp_path):
    uris, contents, expected = _photos(tmp_path)
    good = [i for i, code in enumerate(expected) if code is None]
    frame = P.hash_and_score_frame(uris[good], contents[good], _models(), _settings(tmp_path), TAXONOMY, RULES)
    assert len(frame) == len(good) and (frame.decode_status == "ok").all() and frame.read_error_code.isna().all()
    bad = [expected.index("unreadable_uri"), len(expected) - 1]  # no bytes to be had: a missing file, nothing
    frame = P.hash_and_score_frame(
        uris[bad].reset_index(drop=True), contents[bad].reset_index(drop=True), _models(), _settings(tmp_path),
        TAXONOMY, RULES,
    )
    assert len(frame) == len(bad) and frame.content_hash.isna().all() and frame.angle.isna().all()
    empty = pd.Series([], dtype=object)
    assert len(P.hash_and_score_frame(empty, empty, _models(), _settings(tmp_path), TAXONOMY, RULES)) == 0


def test_one_pass_is_used_when_the_cache_cannot_answer():
    asked: list[bool] = []

    def cache(answer: bool):
        def has_model_set() -> bool:
            asked.append(answer)
            return answer

        return has_model_set

    assert P.use_one_pass("auto", cache(False)) is True
    assert P.use_one_pass("auto", cache(True)) is False
    assert asked == [False, True]
    assert P.use_one_pass("always", cache(True)) is True and P.use_one_pass("never", cache(False)) is False
    assert asked == [False, True]  # only "auto" asks the cache
    with pytest.raises(ValueError, match=r"scoring\.one_pass must be one of"):
        P.use_one_pass("sometimes", cache(False))
