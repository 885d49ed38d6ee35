"""A user's own view and body labels of real photos: reading them and scoring the models against them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fleetvision.models.real_view_labels import (
    class_recalls,
    family_names,
    family_of,
    flank_probabilities,
    labelled_report,
    mirror_flank_report,
    read_view_labels,
    view_family_probabilities,
)
from fleetvision.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()


def _labels(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "views.csv"
    path.write_text(text)
    return path


def test_families_sum_both_flanks_and_every_non_exterior_class() -> None:
    assert family_of("rear_3q_driver", TAXONOMY) == family_of("rear_3q_passenger", TAXONOMY) == "rear_3q"
    assert family_of("full_front", TAXONOMY) == "full_front"
    assert family_of("dashboard", TAXONOMY) == "interior" and family_of("wheel", TAXONOMY) == "detail"
    probs = np.zeros((2, TAXONOMY.num_classes))
    probs[0, TAXONOMY.index("rear_3q_driver")] = 0.3
    probs[0, TAXONOMY.index("rear_3q_passenger")] = 0.3
    probs[0, TAXONOMY.index("full_rear")] = 0.4
    probs[1, [TAXONOMY.index("dashboard"), TAXONOMY.index("boot")]] = 0.5
    families = view_family_probabilities(probs, TAXONOMY)
    names = family_names()
    assert names[int(families[0].argmax())] == "rear_3q"  # 0.6 summed over the two flanks beats 0.4
    assert families[1, names.index("interior")] == pytest.approx(1.0)
    np.testing.assert_allclose(families.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="angle probabilities"):
        view_family_probabilities(np.zeros((1, 3)), TAXONOMY)


def test_labels_are_aligned_to_the_scored_photos_and_unclear_is_left_out(tmp_path: Path) -> None:
    path = _labels(tmp_path, "file,view,body,confidence\nb.jpg,Full_Rear,hatch,high\na.jpg,unclear,suv,low\n"
                             "z.jpg,side,van,high\n")
    labels = read_view_labels(path, ["a.jpg", "b.jpg", "c.jpg"], TAXONOMY)
    assert labels["view"].tolist() == [None, "full_rear", None]
    assert labels["body"].tolist() == ["suv", "hatch", None]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,view\na.jpg,side\n", r"missing column\(s\) \['body'\]"),
        ("file,view,body\na.jpg,side,van\na.jpg,side,van\n", "more than once"),
        ("file,view,body\na.jpg,sideways,van\n", r"column 'view' has \['sideways'\]"),
        ("file,view,body\na.jpg,side,truck\n", r"column 'body' has \['truck'\]"),
        ("file,view,body\nq.jpg,side,van\n", "none of its 1 file"),
    ],
)
def test_bad_label_files_are_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_view_labels(_labels(tmp_path, text), ["a.jpg"], TAXONOMY)
    with pytest.raises(FileNotFoundError):
        read_view_labels(tmp_path / "nowhere.csv", ["a.jpg"], TAXONOMY)


def test_report_counts_view_end_head_on_and_body() -> None:
    names = family_names()

    def one_hot(family: str) -> np.ndarray:
        row = np.zeros(len(names))
        row[names.index(family)] = 1.0
        return row

    probs = np.stack(
        [one_hot("full_rear"), one_hot("rear_3q"), one_hot("full_front"), one_hot("interior"),
         np.full(len(names), np.nan), one_hot("side")]
    )
    labels = pd.DataFrame(
        {
            "view": ["full_rear", "full_rear", "full_rear", "full_front", "front_3q", None],
            "body": ["hatch", "sedan", None, "suv", "van", "hatch"],
        }
    )
    report = labelled_report(probs, ["hatch", "hatch", "suv", None, None, "hatch"], labels)
    view, body = report["view"], report["body"]
    assert view["n"] == view["front_rear_n"] == 5
    assert view["accuracy"] == pytest.approx(1 / 5)  # only the first
    assert view["front_rear_accuracy"] == pytest.approx(2 / 5)  # full_rear and rear_3q are both the rear
    assert view["head_on_accuracy"] == pytest.approx(1 / 2)  # of those two, head-on only for the first
    assert view["confusion"]["full_rear"] == {"full_rear": 1, "rear_3q": 1, "full_front": 1}
    assert view["confusion"]["front_3q"] == {"(not decoded)": 1}
    assert view["recall"] == {"front_3q": 0.0, "full_front": 0.0, "full_rear": pytest.approx(1 / 3, abs=1e-4)}
    assert view["balanced_recall"] is None and view["families_counted"] == 0  # no family has 5 labels
    assert body["n"] == 5 and body["accuracy"] == pytest.approx(2 / 5)
    assert body["confusion"]["sedan"] == {"hatch": 1} and body["confusion"]["suv"] == {"(none)": 1}
    assert body["majority_share"] == pytest.approx(2 / 5) and body["recall"]["hatch"] == 1.0
    assert body["balanced_recall"] is None and body["types_counted"] == 0  # no type has 5 labels
    with pytest.raises(ValueError, match="labelled_report"):
        labelled_report(probs[:2], ["hatch"], labels)


def test_balanced_recall_does_not_reward_the_commonest_answer() -> None:
    truth = np.array(["hatch"] * 8 + ["sedan"] * 5 + ["van"] * 2)
    always_hatch = np.array(["hatch"] * 15)
    recalls, balanced, counted = class_recalls(truth, always_hatch)
    assert recalls == {"hatch": 1.0, "sedan": 0.0, "van": 0.0}
    assert balanced == pytest.approx(0.5) and counted == 2  # hatch and sedan counted (5+ labels each), van not
    mixed = np.array(["hatch"] * 4 + ["sedan"] * 4 + ["sedan"] * 4 + ["hatch"] + ["van"] * 2)
    recalls, balanced, _ = class_recalls(truth, mixed)
    assert recalls["hatch"] == 0.5 and recalls["sedan"] == 0.8 and balanced == pytest.approx(0.65)
    assert class_recalls(np.array([], dtype=object), np.array([], dtype=object)) == ({}, None, 0)


def test_flank_labels_are_optional_and_scored_against_the_flank_classes(tmp_path: Path) -> None:
    names = TAXONOMY.flank_names
    probs = np.zeros((4, len(names)))
    probs[0, names.index("rear_3q_left")] = 0.7  # left, view right
    probs[0, names.index("full_rear")] = 0.3
    probs[1, names.index("front_3q_right")] = 0.4  # right, but the view answered is full_front
    probs[1, names.index("full_front")] = 0.6
    probs[2, names.index("side_left")] = 1.0  # left, labelled right: wrong
    probs[3, names.index("dashboard")] = 1.0  # no flank mass at all: NaN, counted wrong
    flanks = flank_probabilities(probs, TAXONOMY)
    np.testing.assert_allclose(flanks[:3], [[1, 0], [0, 1], [1, 0]])
    assert np.isnan(flanks[3]).all()
    path = _labels(tmp_path, "file,view,body,flank\na,rear_3q,hatch,left\nb,front_3q,unclear,Right\n"
                             "c,side,unclear,right\nd,rear_3q,unclear,left\n")
    labels = read_view_labels(path, ["a", "b", "c", "d"], TAXONOMY)
    assert labels["flank"].tolist() == ["left", "right", "right", "left"]
    report = labelled_report(view_family_probabilities(probs, TAXONOMY), [None] * 4, labels, flanks)
    assert report["flank"] == {"n": 4, "accuracy": 0.5, "n_view_right": 2, "accuracy_when_view_right": 0.5,
                               "majority_share": 0.5, "predicted_right_share": 0.25}
    # without the column (or without flank probabilities) there is no flank figure
    plain = read_view_labels(_labels(tmp_path, "file,view,body\na,side,van\n"), ["a"], TAXONOMY)
    assert plain["flank"].tolist() == [None]
    assert "flank" not in labelled_report(view_family_probabilities(probs[:1], TAXONOMY), [None], plain, flanks[:1])
    with pytest.raises(ValueError, match="column 'flank'"):
        read_view_labels(_labels(tmp_path, "file,view,body,flank\na,side,van,port\n"), ["a"], TAXONOMY)


def test_mirror_report_asks_whether_the_flank_answer_follows_the_photo() -> None:
    names = TAXONOMY.flank_names
    photo, mirror = np.zeros((5, len(names))), np.zeros((5, len(names)))
    # 0: reads the car (left, mirror right); 1: same answer for both (a prior); 2: head-on, not counted;
    # 3: reads the car the other way round; 4: not decoded (NaN), not counted
    for row, (a, b) in enumerate([("side_left", "side_right"), ("rear_3q_right", "rear_3q_right"),
                                  ("full_rear", "full_rear"), ("front_3q_right", "front_3q_left")]):
        photo[row, names.index(a)] = mirror[row, names.index(b)] = 1.0
    photo[4] = mirror[4] = np.nan
    flanks, mirrored = flank_probabilities(photo, TAXONOMY), flank_probabilities(mirror, TAXONOMY)
    families = view_family_probabilities(photo, TAXONOMY)
    assert mirror_flank_report(flanks, mirrored, families) == {
        "n": 3, "flips": 0.6667, "right_share": 0.6667, "right_share_mirrored": 0.6667}
    # over a mask instead (the labelled photos): the head-on one has no flank answer at all (NaN)
    among = np.array([True, True, True, False, True])
    assert mirror_flank_report(flanks, mirrored, families, among=among) == {
        "n": 2, "flips": 0.5, "right_share": 0.5, "right_share_mirrored": 1.0}
    assert mirror_flank_report(flanks[:0], mirrored[:0], families[:0])["flips"] is None
    with pytest.raises(ValueError, match="mirror_flank_report"):
        mirror_flank_report(flanks, mirrored[:4], families)
