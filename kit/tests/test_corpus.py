"""The synthetic corpus: deterministic, the documented families, and a held-out split that really is held out."""
import json

import pytest

from mmrec import corpus


@pytest.fixture(scope="module")
def small():
    return corpus.generate(3000, 100, seed=11)


def test_deterministic(small):
    train, items, _ = small
    train2, items2, _ = corpus.generate(3000, 100, seed=11)
    assert json.dumps(train) == json.dumps(train2) and json.dumps(items) == json.dumps(items2)
    train3, _, _ = corpus.generate(3000, 100, seed=12)
    assert json.dumps(train) != json.dumps(train3)


def test_fact_and_name_inventory():
    assert len(corpus.COUNTRIES) >= 40 and len({c for c, _ in corpus.COUNTRIES}) == len(corpus.COUNTRIES)
    assert len(corpus.NAMES) >= 100 and len(set(corpus.NAMES)) == len(corpus.NAMES)
    assert not any(a != b and a in b for a in corpus.NAMES for b in corpus.NAMES)


def test_heldout_items(small):
    _, items, _ = small
    by = {}
    for it in items:
        by.setdefault(it["family"], []).append(it)
    assert set(by) == {"capital", "arithmetic", "name_recall", "tool_call", "tool_answer", "greeting"}
    assert all(len(v) >= 100 for v in by.values())
    for it in items:
        last = it["messages"][-1]["role"]
        assert last == ("tool" if it["family"] == "tool_answer" else "user")
        assert set(it["expect"]) in ({"contains"}, {"tool_call"})
    for it in by["tool_call"]:
        names = [t["function"]["name"] for t in it["tools"]]
        assert "get_weather" in names and len(names) >= 3
        assert it["expect"]["tool_call"]["name"] == "get_weather"
    for it in by["name_recall"]:
        users = [m for m in it["messages"] if m["role"] == "user"]
        name = it["expect"]["contains"]
        intro = next(i for i, m in enumerate(users) if any(q.format(n=name) == m["content"] for q in corpus.INTRO_Q))
        gap = len(users) - 2 - intro  # exchanges strictly between the intro and the question
        assert 1 <= gap <= 4, "1–4 exchanges between the name and the question"
        assert users[-1]["content"] in corpus.RECALL_Q


def test_heldout_keys_never_trained(small):
    train, items, stats = small
    r = __import__("random").Random(11)
    keys = set()
    for _ in range(3000):
        _, k = corpus.train_conversation(r)
        keys.update(k)
    held = [k for it in items for k in it["_heldout_keys"]]
    assert held and not (set(held) & keys)
    assert all(corpus.is_heldout(k) for k in held)
    assert not any(corpus.is_heldout(k) for k in keys)


def test_verification_catches_a_leak(small):
    train, items, _ = small
    leaked = {"messages": items[0]["messages"] + [{"role": "assistant", "content": "x"}]}
    if "tools" in items[0]:
        leaked["tools"] = items[0]["tools"]
    with pytest.raises(AssertionError):
        corpus.verify_heldout(train + [leaked], set(), items)
