"""The shot taxonomy: shape, mirror pairs, and errors in a bad taxonomy file."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetvision.taxonomy import load_taxonomy


def test_default_taxonomy_has_27_classes_in_three_groups() -> None:
    t = load_taxonomy()
    assert t.num_classes == 27
    assert {c.group for c in t.classes} == {"exterior", "interior", "detail"}
    assert len(t.in_group("exterior")) == 8
    assert [c.index for c in t.classes] == list(range(27))
    assert {"boot", "dashboard", "full_front", "full_rear"} <= set(t.required)
    assert t.body_types == ("sedan", "hatch", "wagon", "suv", "ute", "van", "coupe")


def test_mirror_pairs_are_driver_passenger_and_flip_is_an_involution() -> None:
    t = load_taxonomy()
    assert set(t.mirror_pairs) == {
        ("front_3q_driver", "front_3q_passenger"),
        ("side_driver", "side_passenger"),
        ("rear_3q_driver", "rear_3q_passenger"),
    }
    perm = t.flip_permutation
    assert all(perm[perm[i]] == i for i in range(t.num_classes))
    assert perm[t.index("side_driver")] == t.index("side_passenger")
    assert perm[t.index("dashboard")] == t.index("dashboard")


def test_unknown_class_and_body_type_are_named() -> None:
    t = load_taxonomy()
    with pytest.raises(KeyError, match="unknown shot class 'roof'"):
        t.index("roof")
    with pytest.raises(KeyError, match="unknown body type 'tank'"):
        t.body_index("tank")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{name: a, group: exterior, mirror: b, plate_visible: true, required: true, side: driver}",
         "mirror 'b' is not a class"),
        ("{name: a, group: roof, mirror: null, plate_visible: true, required: true, side: null}",
         "group 'roof' is not one of"),
        ("{name: a, group: exterior, mirror: null, plate_visible: true, required: true}", "lacks keys"),
        ("{name: a, group: exterior, mirror: null, plate_visible: true, required: true, side: null, x: 1}",
         "unknown keys"),
    ],
)
def test_bad_taxonomy_files_are_rejected_with_the_class_named(tmp_path: Path, entry: str, message: str) -> None:
    p = tmp_path / "tax.yaml"
    p.write_text(f"classes:\n  - {entry}\nbody_types: [sedan]\n")
    with pytest.raises(ValueError, match=message):
        load_taxonomy(p)
