"""Training speed of `mmrec.finetune` against `mmrec.train`, side by side on the same data,
batch size, steps, max length and threads (the tiny architecture: train.py from scratch,
finetune.py from a served model directory). Runs alternate, `--rounds` of each, so that a
change in machine load hits both; prints every run and the median ratio.

    cd kit && /usr/bin/python3 tools/bench-finetune.py --base-model ../models/mm-rec-tiny --train X.mmrecds --batch-size 8 --epochs 3

tokens/s counts real (non-padding) input tokens, as both commands report them:
- train: train-summary.json's tok_per_s (its whole training loop);
- finetune step: the finished event's tokens_per_s (time inside optimizer steps);
- finetune wall: processed tokens / the finished event's elapsed_s (checkpoint exports included).

--interleaved instead runs both trainers' steps in one process, alternating step by step
(mmrec.train's step: its batch schedule, corpus-vocabulary softmax and loss; mmrec.finetune's:
Run.train_step on its own schedule), so that other jobs on the machine slow both alike.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile

KIT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, KIT)

import time  # noqa: E402

import torch  # noqa: E402

from mmrec import finetune, train  # noqa: E402
from mmrec.data import batch_schedule, load_dataset, make_batch  # noqa: E402
from mmrec.model_dir import load_model_dir  # noqa: E402
from mmrec.sft import make_optimizer, vocab_remap  # noqa: E402


def interleaved(a, steps: int) -> None:
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory(prefix="bench-ft-") as d:
        args = finetune.build_parser().parse_args(["--base-model", a.base_model, "--train", a.train, "--out", d, "--epochs", str(a.epochs),
                                                   "--batch-size", str(a.batch_size), "--max-len", str(a.max_len), "--threads", str(a.threads),
                                                   "--method", a.method])
        run = finetune.Run(args, None, None)
        run.setup()
    ds = run.ds
    model = load_model_dir(a.base_model).model  # mmrec.train's step costs the same on any weights of the architecture
    vocab, remap = vocab_remap(ds.vocabulary(), model.cfg.vocab_size, "cpu")
    opt = make_optimizer(model.parameters(), 3e-4, 0.05)
    sched = batch_schedule(ds.lengths(), a.batch_size, steps, 0)
    t_train = t_ft = 0.0
    tok_train = tok_ft = 0
    for i in range(steps):
        t0 = time.perf_counter()
        x, y, real = make_batch(ds, list(sched[i]), train.EOT, a.max_len)
        loss = train.masked_loss(model, torch.from_numpy(x), torch.from_numpy(y), vocab, remap)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss.item()
        t1 = time.perf_counter()
        *_, real_ft = run.train_step(run.schedule[i % len(run.schedule)], 3e-4)
        t2 = time.perf_counter()
        t_train += t1 - t0
        t_ft += t2 - t1
        tok_train += real
        tok_ft += real_ft
    print(f"interleaved, {steps} steps each: train {tok_train / t_train:,.0f} tok/s ({tok_train} tokens in {t_train:.1f} s), "
          f"finetune {tok_ft / t_ft:,.0f} tok/s ({tok_ft} tokens in {t_ft:.1f} s) → ratio {(tok_ft / t_ft) / (tok_train / t_train):.2f}")


def run_train(a, steps: int, out: str) -> float:
    cmd = [sys.executable, "-m", "mmrec.train", "--data", a.train, "--out", out, "--preset", "tiny", "--steps", str(steps),
           "--batch-size", str(a.batch_size), "--max-len", str(a.max_len), "--threads", str(a.threads), "--warmup", str(max(1, steps // 10)),
           "--lr", "3e-4", "--log-every", "1000000", "--ckpt-every", "1000000"]
    subprocess.run(cmd, cwd=KIT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.load(open(os.path.join(out, "train-summary.json")))["tok_per_s"]


def run_finetune(a, out: str) -> dict:
    cmd = [sys.executable, "-m", "mmrec.finetune", "--base-model", a.base_model, "--train", a.train, "--out", out, "--epochs", str(a.epochs),
           "--batch-size", str(a.batch_size), "--max-len", str(a.max_len), "--threads", str(a.threads), "--method", a.method]
    proc = subprocess.run(cmd, cwd=KIT, check=True, capture_output=True, text=True)
    return [json.loads(line) for line in proc.stdout.splitlines()][-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-model", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-len", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--method", default="full", choices=["full", "state"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--interleaved", action="store_true", help="alternate the two trainers' steps in one process")
    a = ap.parse_args()
    a.train = os.path.abspath(a.train)
    a.base_model = os.path.abspath(a.base_model)
    n = len(load_dataset(a.train))
    steps = math.ceil(n / a.batch_size) * a.epochs
    print(f"data {a.train}: {n} conversations; batch {a.batch_size}, {steps} steps, max-len {a.max_len}, {a.threads} threads, finetune --method {a.method}")
    if a.interleaved:
        for _ in range(a.rounds):
            interleaved(a, steps)
        return
    rows = {"train": [], "finetune step": [], "finetune wall": []}
    for r in range(a.rounds):
        with tempfile.TemporaryDirectory(prefix="bench-ft-") as d:
            t = run_train(a, steps, os.path.join(d, "train"))
            fin = run_finetune(a, os.path.join(d, "ft"))
        rows["train"].append(t)
        rows["finetune step"].append(fin["tokens_per_s"])
        rows["finetune wall"].append(fin["processed_tokens"] / fin["elapsed_s"])
        print(f"round {r + 1}: train {t:,.0f} tok/s | finetune {fin['tokens_per_s']:,.0f} tok/s in steps, "
              f"{rows['finetune wall'][-1]:,.0f} tok/s over {fin['elapsed_s']:.1f} s with checkpoints", flush=True)
    mt = statistics.median(rows["train"])
    for k in ("finetune step", "finetune wall"):
        m = statistics.median(rows[k])
        print(f"median {k}: {m:,.0f} tok/s vs train {mt:,.0f} tok/s → ratio {m / mt:.2f}")


if __name__ == "__main__":
    main()
