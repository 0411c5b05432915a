"""Keys: canonical, order-independent, sensitive to every keyed part."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdbuild.keys import KEY_VERSION, canonical_json, changed_parts, content_hash
from fdbuild.nodes.generate import generation_key, make_request, messages_for

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_hash_ignores_key_order(d: dict) -> None:
    reordered = dict(reversed(list(d.items())))
    assert content_hash(d) == content_hash(reordered)
    assert canonical_json(d) == canonical_json(reordered)


@given(
    st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=6), st.text(max_size=8)
)
def test_hash_changes_with_any_part(d: dict, extra: str) -> None:
    changed = {**d, "__extra__" + extra: 1}
    assert content_hash(changed) != content_hash(d)


def test_int_and_float_differ_and_nan_is_refused() -> None:
    assert content_hash({"t": 1}) != content_hash({"t": 1.0})
    with pytest.raises(ValueError):
        canonical_json({"t": math.nan})


def test_key_version_is_part_of_every_key() -> None:
    assert KEY_VERSION in canonical_json({"key_version": KEY_VERSION})
    assert content_hash({}).startswith("x3:")


IDENTITY = {"provider": "ollama", "model": "m:latest", "digest": "a" * 64}


def key(decode=None, k=0, system="S", prompt="P", identity=IDENTITY):
    req = make_request(
        messages_for(system, prompt), decode or {"temperature": 0.2, "seed": 7}, k, None, None
    )
    return generation_key(identity, req, k)


def test_generation_key_parts() -> None:
    base = key()
    assert key() == base
    assert key(prompt="P2") != base
    assert key(system="S2") != base
    assert key(decode={"temperature": 0.3, "seed": 7}) != base
    assert key(k=1) != base
    assert key(identity={**IDENTITY, "digest": "b" * 64}) != base


def test_candidate_seeds_derive_from_base_seed() -> None:
    seeds = [
        make_request(messages_for(None, "p"), {"seed": 7}, k, None, None).options["seed"]
        for k in range(3)
    ]
    assert seeds == [7, 8, 9]
    # raising n keeps the earlier candidates' keys
    assert [key(k=k) for k in range(2)] == [key(k=k) for k in range(3)][:2]


def test_changed_parts_names_the_part() -> None:
    assert changed_parts({"a": 1, "b": {"x": 1}}, {"a": 1, "b": {"x": 2}}) == ["b"]
    assert changed_parts(None, {"a": 1}) == ["a"]
