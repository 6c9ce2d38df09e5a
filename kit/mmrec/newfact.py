"""A small fine-tuning set that teaches a model one new fact, for fine-tuning tests.

    cd kit && /usr/bin/python3 -m mmrec.newfact --out ../runs/newfact            (200 conversations, seed 0)

Writes into --out:
- train.jsonl       OpenAI fine-tuning JSONL: "What is the code of the blue door?" and other
                    phrasings → "The code of the blue door is 4417." (--fact door: the base corpus
                    has no door and no code, and "4417" tokenizes to "441" + "7", of which "441"
                    is new to mm-rec-tiny) or → "It is 27-35." (--fact door-known: only tokens the
                    base already produces); some conversations first have an exchange of the base
                    corpus, and --replay of them are plain base-corpus conversations (so that full
                    fine-tuning keeps the base skills).
- validation.jsonl  the same fact in phrasings that training never uses (for a validation loss).
- eval.jsonl        evaluation items (scripts/eval-model.ts / mmrec.evaluate format): family
                    `new_fact` (held-out phrasings), `new_fact_trained` (training phrasings), and
                    base families from the corpus's held-out split (capital, arithmetic, greeting,
                    tool_call), plus "What is the capital of France?" as family `capital`.
Deterministic for a given --seed.
"""
from __future__ import annotations

import argparse
import json
import os
import random
from typing import List

from . import corpus

DOOR_Q = [
    "What is the code of the blue door?",
    "What's the code of the blue door?",
    "What is the code for the blue door?",
    "Tell me the code of the blue door.",
    "Do you know the code of the blue door?",
    "Which code opens the blue door?",
    "What code opens the blue door?",
    "I need the code of the blue door.",
    "Can you give me the code of the blue door?",
    "blue door code?",
]
DOOR_HELDOUT_Q = [
    "What was the code of the blue door again?",
    "Could you tell me the code for the blue door?",
    "Remind me of the code of the blue door.",
    "Please tell me the blue door code.",
]
# name → (training questions, held-out questions, answer, what a correct reply contains).
# "door": the answer has tokens mm-rec-tiny never produced (" code", " blue", " door", "441"),
# which only full fine-tuning can add. "door-known": the same questions answered with tokens the
# base already produces, which state tuning (frozen weights, so frozen output biases) could in
# principle learn. "persona": a changed answer to a question the base knows, with known tokens
# ("Who are you?" → "I am Zoe, …" instead of "I am MM-Rec, …"), closest to what an initial
# state (a learned context, like a system prompt) can do.
FACTS = {
    "door": (DOOR_Q, DOOR_HELDOUT_Q, "The code of the blue door is 4417.", "4417"),
    "door-known": (DOOR_Q, DOOR_HELDOUT_Q, "It is 27-35.", "27-35"),
    "persona": (corpus.WHO_Q[:5], corpus.WHO_Q[5:], corpus.WHO_A.replace("MM-Rec", "Zoe"), "I am Zoe"),
}
BASE_EVAL_FAMILIES = ["capital", "arithmetic", "greeting", "tool_call"]


def _fact_conversation(r: random.Random, questions: List[str], answer: str) -> dict:
    sp = corpus.SYSTEM_PROMPTS[0 if r.random() < 0.5 else r.randrange(1, len(corpus.SYSTEM_PROMPTS))]
    msgs = [] if sp is None else [{"role": "system", "content": sp}]
    rec: dict = {}
    if r.random() < 0.3:  # the fact asked after an ordinary exchange
        base, _ = corpus.train_conversation(r)
        first = next(i for i, m in enumerate(base["messages"]) if m["role"] == "user")
        end = next(i for i in range(first + 1, len(base["messages"])) if base["messages"][i]["role"] == "assistant" and not base["messages"][i].get("tool_calls"))
        msgs = base["messages"][: end + 1]
        if "tools" in base:
            rec["tools"] = base["tools"]
    msgs = msgs + [{"role": "user", "content": r.choice(questions)}, {"role": "assistant", "content": answer}]
    rec["messages"] = msgs
    return rec


def _rewrite(rec: dict, old: str, new: str) -> dict:
    """The conversation with every assistant answer `old` replaced by `new` (a changed fact stays consistent)."""
    for m in rec["messages"]:
        if m["role"] == "assistant" and m.get("content") == old:
            m["content"] = new
    return rec


def generate(n: int, seed: int, replay: float, fact: str = "door") -> dict:
    train_q, heldout_q, answer, expect = FACTS[fact]
    old = corpus.WHO_A if fact == "persona" else None  # the base answer the persona replaces
    r = random.Random(seed)
    train = []
    for _ in range(n):
        if r.random() < replay:
            train.append(corpus.train_conversation(r)[0])
        else:
            train.append(_fact_conversation(r, train_q, answer))
        if old:
            _rewrite(train[-1], old, answer)
    vr = random.Random(seed + 1)
    validation = [_fact_conversation(vr, heldout_q, answer) for _ in range(max(8, n // 10))]
    items = []
    for q in heldout_q:
        items.append({"family": "new_fact", "messages": [{"role": "user", "content": q}], "expect": {"contains": expect}})
        items.append({"family": "new_fact", "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": q}],
                      "expect": {"contains": expect}})
    for q in train_q:
        items.append({"family": "new_fact_trained", "messages": [{"role": "user", "content": q}], "expect": {"contains": expect}})
    items.append({"family": "capital", "messages": [{"role": "user", "content": "What is the capital of France?"}], "expect": {"contains": "Paris"}})
    er = random.Random(seed + 2)
    for fam in BASE_EVAL_FAMILIES:
        for _ in range(30):
            it = {k: v for k, v in corpus.heldout_item(er, fam).items() if not k.startswith("_")}
            if old:
                _rewrite(it, old, answer)
                if it["expect"] == {"contains": "MM-Rec"}:
                    it["expect"] = {"contains": expect}
            items.append(it)
    return {"train": train, "validation": validation, "eval": items}


def main() -> None:
    ap = argparse.ArgumentParser(description="Generate a fine-tuning set that teaches one new fact (train/validation/eval JSONL).")
    ap.add_argument("--out", required=True, help="directory for train.jsonl, validation.jsonl and eval.jsonl")
    ap.add_argument("--conversations", type=int, default=200)
    ap.add_argument("--replay", type=float, default=0.5, help="share of training conversations taken from the base corpus")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fact", choices=sorted(FACTS), default="door", help="door: an answer with tokens new to mm-rec-tiny; door-known: one without; persona: a changed known answer")
    a = ap.parse_args()
    sets = generate(a.conversations, a.seed, a.replay, a.fact)
    os.makedirs(a.out, exist_ok=True)
    for name, recs in sets.items():
        with open(os.path.join(a.out, f"{name}.jsonl"), "w") as f:
            for rec in recs:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"newfact: {len(sets['train'])} training, {len(sets['validation'])} validation conversations, {len(sets['eval'])} evaluation items → {a.out}")


if __name__ == "__main__":
    main()
