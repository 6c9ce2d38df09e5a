"""Shared helpers for the kit's tests. They run with /usr/bin/python3 from kit/run-tests.sh."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

KIT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
REPO = os.path.dirname(KIT)
sys.path.insert(0, KIT)


def require_tool(name: str) -> str:
    """The path of a command-line tool; a missing one fails the test (never skips it)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not on PATH: these tests need Node.js (the server's runtime) and must not be skipped")
    return path


def run_onnx(model_dir: str, ids: np.ndarray, chunkings, work: str) -> list:
    """Run model.onnx with onnxruntime-node over ids [B, T] once per chunking (state carried
    between chunks); returns [(logits [B,T,V], [state_out.i [B,D]...]), ...]."""
    node = require_tool("node")
    os.makedirs(work, exist_ok=True)
    ids.astype(np.int64).tofile(os.path.join(work, "ids.bin"))
    job = os.path.join(work, "job.json")
    with open(job, "w") as f:
        json.dump({"batch": int(ids.shape[0]), "seq": int(ids.shape[1]), "ids": "ids.bin", "chunkings": chunkings}, f)
    out = os.path.join(work, "out")
    proc = subprocess.run([node, os.path.join(KIT, "tools", "onnx-run.mjs"), os.path.join(model_dir, "model.onnx"), job, out], capture_output=True, text=True)
    assert proc.returncode == 0, f"onnx-run.mjs failed:\n{proc.stderr}"
    res = json.load(open(os.path.join(out, "result.json")))
    results = []
    for k, c in enumerate(res["chunkings"]):
        logits = np.fromfile(os.path.join(out, f"{k}.logits.bin"), dtype=np.float32).reshape(c["logits"])
        states = [
            np.fromfile(os.path.join(out, f"{k}.{n.replace('state_in.', 'state_out.')}.bin"), dtype=np.float32).reshape(ids.shape[0], -1)
            for n in sorted(res["stateNames"], key=lambda s: int(s.split(".")[1]))
        ]
        results.append((logits, states))
    return results


def prepare_data(jsonl_path: str, out_path: str) -> subprocess.CompletedProcess:
    """`npm run prepare-data` (the real TypeScript pipeline)."""
    npm = require_tool("npm")
    return subprocess.run([npm, "run", "--silent", "prepare-data", "--", "--input", jsonl_path, "--output", out_path], cwd=REPO, capture_output=True, text=True)


def tokenize_texts(*texts: str) -> list:
    """Plain-text token ids of each string, from the project's tokenizer."""
    npx = require_tool("npx")
    proc = subprocess.run([npx, "--no-install", "tsx", os.path.join(KIT, "tools", "tokenize.ts"), "text", *texts], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.strip().split("\n")]


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|: the error relative to the logits' scale (element-wise
    relative error is meaningless for logits near zero)."""
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))
