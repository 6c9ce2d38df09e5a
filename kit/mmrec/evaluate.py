"""Greedy held-out evaluation of a checkpoint in PyTorch (for iterating on the
model; the served ONNX model is evaluated by `npx tsx scripts/eval-model.ts`), or of
a model directory through onnxruntime-node, initial state included (state tuning).

    cd kit && /usr/bin/python3 -m mmrec.evaluate --checkpoint ../runs/tiny/final.pt --data ../runs/tiny/data/heldout.jsonl
    cd kit && /usr/bin/python3 -m mmrec.evaluate --model-dir ../runs/ft/final --data ../runs/newfact/eval.jsonl

Prompts are rendered by the project's own chat template (kit/tools/tokenize.ts),
and generated ids are decoded with its byte table, so what is scored here is what
the server would produce. Weights are rounded to fp16 first, as in the export.

Scoring: {"contains": s} passes when s occurs in the generated text content;
{"tool_call": {name, arguments}} passes when a generated tool call has that name
and exactly those arguments (parsed JSON).
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from typing import Dict, List, Optional

import torch

from .export import load_checkpoint_model, round_to_fp16
from .model import MMRec

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOKENIZE = os.path.join(REPO, "kit", "tools", "tokenize.ts")
ONNX_GREEDY = os.path.join(REPO, "kit", "tools", "onnx-greedy.mjs")


def _tsx(*args: str) -> None:
    subprocess.run(["npx", "--no-install", "tsx", TOKENIZE, *args], cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def render_prompts(heldout_path: str) -> List[List[int]]:
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "prompts.json")
        _tsx("eval", os.path.abspath(heldout_path), out)
        with open(out) as f:
            return json.load(f)["prompts"]


class Decoder:
    """Token ids → text with the TypeScript tokenizer's byte table."""

    def __init__(self, cache_path: Optional[str] = None):
        if cache_path is None or not os.path.exists(cache_path):
            path = cache_path or os.path.join(tempfile.mkdtemp(), "vocab.json")
            _tsx("vocab", os.path.abspath(path))
            cache_path = path
        with open(cache_path) as f:
            table = json.load(f)
        self.bytes = {int(k): base64.b64decode(v) for k, v in table["bytes"].items()}
        self.special = table["special_tokens"]
        self.eot = self.special["<|endoftext|>"]
        self.tool_call = self.special["<|tool_call|>"]

    def text(self, ids: List[int]) -> str:
        return b"".join(self.bytes.get(i, b"") for i in ids).decode("utf-8", errors="replace")

    def parse(self, ids: List[int]) -> dict:
        """Split an assistant message into text content and tool calls, as the server does."""
        parts: List[List[int]] = [[]]
        for i in ids:
            if i == self.tool_call:
                parts.append([])
            else:
                parts[-1].append(i)
        calls = []
        for p in parts[1:]:
            try:
                calls.append(json.loads(self.text(p)))
            except json.JSONDecodeError:
                calls.append({"unparsable": self.text(p)})
        return {"content": self.text(parts[0]), "tool_calls": calls}


@torch.no_grad()
def greedy(model: MMRec, prompts: List[List[int]], eot: int, max_new: int = 48, batch: int = 64) -> List[List[int]]:
    """Greedy continuation of each prompt until <|endoftext|> (not included) or max_new tokens.
    Prompts are prefilled one by one (their lengths differ), then decoded in batches."""
    outs: List[List[int]] = []
    for b0 in range(0, len(prompts), batch):
        group = prompts[b0 : b0 + batch]
        states, nxt = [], []
        for p in group:
            logits, st = model(torch.tensor([p]), model.zero_state(1))
            states.append(st)
            nxt.append(int(logits[0, -1].argmax()))
        state = [torch.cat([s[i] for s in states]) for i in range(model.cfg.n_layers)]
        cur = torch.tensor(nxt)
        gen: List[List[int]] = [[] for _ in group]
        done = [False] * len(group)
        for _ in range(max_new):
            for r, t in enumerate(cur.tolist()):
                if not done[r]:
                    if t == eot:
                        done[r] = True
                    else:
                        gen[r].append(t)
            if all(done):
                break
            logits, state = model(cur.unsqueeze(1), state)
            cur = logits[:, -1].argmax(-1)
        outs += gen
    return outs


def greedy_onnx(model_dir: str, prompts: List[List[int]], eot: int, max_new: int = 48) -> List[List[int]]:
    """Greedy continuations from a model directory with onnxruntime-node: its model.onnx, or
    for an initial-state directory the base's, each sequence starting from the directory's
    initial state if it has one (kit/tools/onnx-greedy.mjs)."""
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    graph = cfg["base_model"]["path"] if "base_model" in cfg else model_dir
    init = None
    if "initial_state" in cfg:
        init = {"file": os.path.abspath(os.path.join(model_dir, cfg["initial_state"]["file"])), "shapes": cfg["initial_state"]["shapes"]}
    with tempfile.TemporaryDirectory() as d:
        job = os.path.join(d, "job.json")
        with open(job, "w") as f:
            json.dump({"model": os.path.abspath(os.path.join(model_dir, graph, "model.onnx")), "prompts": prompts, "max_new": max_new, "eos": [eot],
                       "initial_state": init}, f)
        out = os.path.join(d, "out.json")
        subprocess.run(["node", ONNX_GREEDY, job, out], check=True)
        with open(out) as f:
            return json.load(f)["generations"]


def score(item: dict, parsed: dict) -> bool:
    exp = item["expect"]
    if "contains" in exp:
        return exp["contains"] in parsed["content"]
    want = exp["tool_call"]
    return any(c.get("name") == want["name"] and c.get("arguments") == want["arguments"] for c in parsed["tool_calls"])


def evaluate(model, heldout_path: str, vocab_cache: Optional[str] = None, show_failures: int = 3) -> Dict[str, dict]:
    """`model`: an MMRec (PyTorch, weights rounded to fp16 first) or a model directory's path (onnxruntime)."""
    items = [json.loads(l) for l in open(heldout_path) if l.strip()]
    prompts = render_prompts(heldout_path)
    dec = Decoder(vocab_cache)
    if isinstance(model, str):
        gens = greedy_onnx(model, prompts, dec.eot)
    else:
        gens = greedy(round_to_fp16(model).eval(), prompts, dec.eot)
    per: Dict[str, dict] = defaultdict(lambda: {"n": 0, "correct": 0, "failures": []})
    for it, g in zip(items, gens):
        p = dec.parse(g)
        ok = score(it, p)
        f = per[it["family"]]
        f["n"] += 1
        f["correct"] += int(ok)
        if not ok and len(f["failures"]) < show_failures:
            f["failures"].append({"last": it["messages"][-1]["content"], "expect": it["expect"], "got": p})
    for f in per.values():
        f["accuracy"] = f["correct"] / f["n"]
    return dict(per)


def print_table(per: Dict[str, dict], file=sys.stdout) -> None:
    print(f"{'family':<14}{'n':>5}{'accuracy':>10}", file=file)
    for fam, f in per.items():
        print(f"{fam:<14}{f['n']:>5}{100 * f['accuracy']:>9.1f}%", file=file)
    tot = sum(f["n"] for f in per.values())
    print(f"{'overall':<14}{tot:>5}{100 * sum(f['correct'] for f in per.values()) / tot:>9.1f}%", file=file)


def report(per: Dict[str, dict]) -> dict:
    """The summary shape scripts/eval-model.ts writes with --json (accuracy in percent)."""
    fams = {k: {"n": v["n"], "correct": v["correct"], "accuracy": 100.0 * v["accuracy"]} for k, v in sorted(per.items())}
    n = sum(v["n"] for v in per.values())
    c = sum(v["correct"] for v in per.values())
    return {"evaluator": "kit/mmrec/evaluate.py (PyTorch)", "overall": {"n": n, "correct": c, "accuracy": 100.0 * c / max(1, n)}, "families": fams,
            "failures": {k: v["failures"] for k, v in per.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description="Greedy held-out evaluation of a checkpoint (PyTorch) or a model directory (onnxruntime).")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a checkpoint written by mmrec.train (evaluated in PyTorch)")
    src.add_argument("--model-dir", help="a served model directory, initial-state directories included (evaluated with onnxruntime-node)")
    ap.add_argument("--data", required=True, help="heldout.jsonl from mmrec.corpus")
    ap.add_argument("--vocab-cache", help="where to keep the decode table between runs")
    ap.add_argument("--json", help="write the per-family results here")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    per = evaluate(a.model_dir if a.model_dir else load_checkpoint_model(a.checkpoint), a.data, a.vocab_cache)
    for fam, f in per.items():
        for x in f["failures"]:
            print(f"FAIL {fam}: {json.dumps(x, ensure_ascii=False)}", file=sys.stderr)
    print_table(per)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report(per), f, indent=2, ensure_ascii=False)


if __name__ == "__main__":
    main()
