"""The public surface is explicit (STYLE H14): every name in __all__ resolves."""

import fdbuild


def test_all_names_resolve() -> None:
    for name in fdbuild.__all__:
        assert getattr(fdbuild, name) is not None


def test_all_is_sorted_and_complete() -> None:
    assert fdbuild.__all__ == sorted(fdbuild.__all__)
    assert {"build", "BuildOptions", "load_graph", "Override"} <= set(fdbuild.__all__)
