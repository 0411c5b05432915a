"""The lock shows long texts as digests wherever they sit in a recipe: a ``messages:``
conversation (a list of mappings) is as compact as a ``template`` node."""

from __future__ import annotations

from fdbuild.keys import digest_text
from fdbuild.lockfile import lock_view

LONG = "Question: {question}\n" + "x" * 200


def test_long_texts_in_mappings_become_digests() -> None:
    view = lock_view({"template": LONG, "system": "short", "decode": {"stop": LONG}})
    assert view == {
        "template_digest": digest_text(LONG),
        "system": "short",
        "decode": {"stop_digest": digest_text(LONG)},
    }


def test_long_texts_in_lists_become_digests_and_roles_stay() -> None:
    messages = [
        {"role": "system", "content": "You write SQL."},
        {"role": "user", "content": LONG},
        {"role": "assistant", "content": "SELECT 1"},
    ]
    view = lock_view({"messages": messages, "decode": {"stop": ["\n\n", "###"]}})
    assert view["messages"] == [
        {"role": "system", "content": "You write SQL."},
        {"role": "user", "content_digest": digest_text(LONG)},
        {"role": "assistant", "content": "SELECT 1"},
    ]
    assert view["decode"] == {"stop": ["\n\n", "###"]}  # bare strings in lists stay
    assert messages[1]["content"] == LONG  # the recipe itself is untouched
