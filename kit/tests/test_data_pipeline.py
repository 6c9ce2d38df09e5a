"""Loss masks through the real preparation pipeline (`npm run prepare-data`, TypeScript)
and the kit's reader and batcher."""
import base64
import json
import os
import subprocess

import numpy as np
import pytest

from conftest import KIT, REPO, prepare_data, require_tool, tokenize_texts
from mmrec.data import IGNORE, load_dataset, make_batch

EOT, SYSTEM, USER, ASSISTANT, TOOL, TOOLS, TOOL_CALL = 100257, 100261, 100262, 100263, 100264, 100265, 100266

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Get the weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
TIME = {"type": "function", "function": {"name": "get_time", "description": "Get the time", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def _call(cid, name, args):
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


CONVERSATIONS = [
    {  # tools, a system prompt, a tool call with no text, a tool result, a final answer
        "tools": [WEATHER, TIME],
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hi, my name is Alice."},
            {"role": "assistant", "content": "Nice to meet you, Alice!"},
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [_call("c1", "get_weather", {"city": "Paris"})]},
            {"role": "tool", "tool_call_id": "c1", "content": '{"temperature_c": 18, "condition": "sunny"}'},
            {"role": "assistant", "content": "It's 18°C and sunny in Paris."},
        ],
    },
    {  # text and two tool calls in one assistant message; the first assistant message has weight 0
        "tools": [TIME, WEATHER],
        "messages": [
            {"role": "user", "content": "What is 7 + 5?"},
            {"role": "assistant", "content": "7 + 5 = 13.", "weight": 0},
            {"role": "user", "content": "Weather and time in Rome?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [_call("a", "get_weather", {"city": "Rome"}), _call("b", "get_time", {"city": "Rome"})]},
        ],
    },
    {"messages": [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hello! How can I help you today?"}]},
]

# What each conversation's trained (masked-in) token runs must decode to, in order.
EXPECTED_RUNS = [
    ["Nice to meet you, Alice!\n<|endoftext|>", '<|tool_call|>{"name":"get_weather","arguments":{"city":"Paris"}}\n<|endoftext|>', "It's 18°C and sunny in Paris.\n<|endoftext|>"],
    ['Checking.<|tool_call|>{"name":"get_weather","arguments":{"city":"Rome"}}<|tool_call|>{"name":"get_time","arguments":{"city":"Rome"}}\n<|endoftext|>'],
    ["Hello! How can I help you today?\n<|endoftext|>"],
]


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    npx = require_tool("npx")
    path = str(tmp_path_factory.mktemp("vocab") / "vocab.json")
    subprocess.run([npx, "--no-install", "tsx", os.path.join(KIT, "tools", "tokenize.ts"), "vocab", path], cwd=REPO, check=True)
    table = json.load(open(path))
    return {int(k): base64.b64decode(v) for k, v in table["bytes"].items()}


def _write_jsonl(path, convs):
    with open(path, "w") as f:
        for c in convs:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")


def _runs(ids, mask):
    """Contiguous runs of masked-in tokens."""
    runs, cur = [], []
    for i, m in zip(ids, mask):
        if m:
            cur.append(int(i))
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return runs


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    d = tmp_path_factory.mktemp("prep")
    _write_jsonl(d / "train.jsonl", CONVERSATIONS)
    proc = prepare_data(str(d / "train.jsonl"), str(d / "train.mmrecds"))
    assert proc.returncode == 0, proc.stderr
    return load_dataset(str(d / "train.mmrecds"))


def test_header_and_layout(prepared):
    ds = prepared
    assert len(ds) == 3
    assert ds.header["vocab_size"] == 100277 and ds.header["encoding"] == "cl100k_base"
    assert ds.header["tokens"] == len(ds.tokens) == int(ds.offsets[-1])
    assert ds.header["trained_tokens"] == int(ds.mask.sum())
    ids0, _ = ds.conversation(0)
    assert ids0[0] == TOOLS, "the tools block renders first"
    assert list(ids0[-2:]) == [tokenize_texts("\n")[0][0], EOT]


def test_mask_is_exactly_the_assistant_output(prepared, vocab):
    for i, expected in enumerate(EXPECTED_RUNS):
        ids, mask = prepared.conversation(i)
        runs = _runs(ids, mask)
        text = [b"".join(vocab[t] for t in r).decode("utf-8") for r in runs]
        assert text == expected, f"conversation {i}"


def test_trained_token_count_matches_independent_tokenization(prepared):
    # Count from the tokenizer alone: content + per call (<|tool_call|> + JSON) + "\n" + <|endoftext|>.
    pieces = ["Nice to meet you, Alice!", '{"name":"get_weather","arguments":{"city":"Paris"}}', "It's 18°C and sunny in Paris.", "\n"]
    toks = tokenize_texts(*pieces)
    nl = len(toks[3])
    expected0 = (len(toks[0]) + nl + 1) + (1 + len(toks[1]) + nl + 1) + (len(toks[2]) + nl + 1)
    ids, mask = prepared.conversation(0)
    assert int(mask.sum()) == expected0


def test_weight_zero_masks_a_message(prepared, vocab):
    ids, mask = prepared.conversation(1)
    text = b"".join(vocab[int(t)] for t, m in zip(ids, mask) if m).decode()
    assert "13" not in text and text.startswith("Checking.")


def test_conversation_without_trainable_tokens_is_an_error(tmp_path):
    bad = [CONVERSATIONS[2], {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello", "weight": 0}]}]
    _write_jsonl(tmp_path / "bad.jsonl", bad)
    proc = prepare_data(str(tmp_path / "bad.jsonl"), str(tmp_path / "bad.mmrecds"))
    assert proc.returncode != 0
    assert "line 2" in proc.stderr and "no assistant message to train on" in proc.stderr
    _write_jsonl(tmp_path / "none.jsonl", [{"messages": [{"role": "user", "content": "Hi"}]}])
    assert prepare_data(str(tmp_path / "none.jsonl"), str(tmp_path / "none.mmrecds")).returncode != 0


def test_batch_shifts_labels_and_pads(prepared):
    inputs, labels, real = make_batch(prepared, [0, 2], pad_id=EOT, max_len=4096)
    n0 = len(prepared.conversation(0)[0])
    n2 = len(prepared.conversation(2)[0])
    assert inputs.shape == labels.shape == (2, max(n0, n2) - 1)
    assert real == (n0 - 1) + (n2 - 1)
    for row, i in enumerate([0, 2]):
        ids, mask = prepared.conversation(i)
        n = len(ids) - 1
        assert np.array_equal(inputs[row, :n], ids[:-1])
        want = np.where(mask[1:] == 1, ids[1:].astype(np.int64), IGNORE)
        assert np.array_equal(labels[row, :n], want)
        assert (labels[row, n:] == IGNORE).all()
    assert int((labels != IGNORE).sum()) == int(prepared.conversation(0)[1][1:].sum() + prepared.conversation(2)[1][1:].sum())


def test_rejects_a_file_that_is_not_a_dataset(tmp_path):
    p = tmp_path / "x.mmrecds"
    p.write_bytes(b"NOTADATA" + bytes(64))
    with pytest.raises(ValueError):
        load_dataset(str(p))
