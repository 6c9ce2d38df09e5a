"""Supervised fine-tuning (assistant-only loss) of an MM-Rec model on a prepared dataset.

    cd kit && /usr/bin/python3 -m mmrec.train --data ../runs/tiny/train.mmrecds --out ../runs/tiny --preset tiny --steps 3000

AdamW, linear warm-up then cosine decay, gradient clipping, a fixed seed (same
data + arguments → same weights), periodic checkpoints (`<out>/ckpt.pt`) and
`--resume`. A resumed run continues with exactly the batches and optimizer state
an uninterrupted run would have had. `--device cuda` trains on a GPU (the CPU is
the default); checkpoints are read back onto the CPU whatever they were saved from.

Speed-ups, both exact for the loss being optimised (mmrec/sft.py):
- the LM head is evaluated only at positions that carry a loss (assistant tokens);
- the softmax is restricted to the corpus vocabulary (tokens that never occur can
  never be targets). Their logits are then fixed by the output bias, which is set
  to -20 for them (see MMRec.out_bias), so the exported model still produces
  full-vocabulary logits and never emits an unseen token.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional

import numpy as np
import torch

from .data import iterate, load_dataset
from .model import MMRec, MMRecConfig, PRESETS, count_parameters, get_config, load_checkpoint
from .sft import EOT, UNSEEN_BIAS, loss_and_correct, lr_at, make_optimizer, resolve_device, vocab_remap  # noqa: F401 (re-exported)


def masked_loss(model: MMRec, inputs: torch.Tensor, labels: torch.Tensor, vocab: Optional[torch.Tensor], remap: Optional[torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over the positions whose label is not -100."""
    return loss_and_correct(model, inputs, labels, vocab, remap)[0]


def save_checkpoint(path: str, model: MMRec, opt: torch.optim.Optimizer, step: int, args: dict, vocab: np.ndarray) -> None:
    tmp = path + ".tmp"
    torch.save(
        {"config": model.cfg.to_dict(), "model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "args": args, "vocab": vocab.tolist()},
        tmp,
    )
    os.replace(tmp, path)  # atomic: an interrupted save never leaves a broken checkpoint


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="SFT trainer for MM-Rec (assistant-only loss).")
    ap.add_argument("--data", required=True, help="an .mmrecds file from `npm run prepare-data`")
    ap.add_argument("--out", required=True, help="directory for ckpt.pt, final.pt and train-log.jsonl")
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--d-model", type=int)
    ap.add_argument("--n-layers", type=int)
    ap.add_argument("--d-ffn", type=int)
    ap.add_argument("--dpg-rank", type=int)
    ap.add_argument("--embed-rank", type=int, help="0 = plain tied D-dim embedding")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-len", type=int, default=512, help="conversations are cut to this many input tokens")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (the build machine has 2 cores)")
    ap.add_argument("--device", default="cpu", help="torch device to train on: cpu (default), cuda, cuda:1, …")
    ap.add_argument("--full-softmax", action="store_true", help="softmax over all 100277 tokens (slow)")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--ckpt-every", type=int, default=500)
    ap.add_argument("--resume", action="store_true", help="continue from <out>/ckpt.pt")
    ap.add_argument("--stop-after", type=int, help="stop (after checkpointing) at this step; for tests of --resume")
    return ap


def main(argv=None) -> None:
    a = build_parser().parse_args(argv)
    device = resolve_device(a.device)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    ds = load_dataset(a.data)
    vocab_np = ds.vocabulary()

    ckpt_path = os.path.join(a.out, "ckpt.pt")
    start = 0
    if a.resume:
        ckpt = load_checkpoint(ckpt_path)
        cfg = MMRecConfig.from_dict(ckpt["config"])
        model = MMRec(cfg)
        model.load_state_dict(ckpt["model"])
        model.to(device)
        opt = make_optimizer(model.parameters(), a.lr, a.weight_decay)
        opt.load_state_dict(ckpt["optimizer"])  # moves the optimizer state to the parameters' device
        start = ckpt["step"]
        print(f"resumed from {ckpt_path} at step {start}", file=sys.stderr)
    else:
        cfg = get_config(a.preset, d_model=a.d_model, n_layers=a.n_layers, d_ffn=a.d_ffn, dpg_rank=a.dpg_rank)
        if a.embed_rank is not None:
            cfg.embed_rank = a.embed_rank or None
        model = MMRec(cfg)
        if not a.full_softmax:
            model.set_unseen_bias(torch.from_numpy(vocab_np), UNSEEN_BIAS)
        model.to(device)
        opt = make_optimizer(model.parameters(), a.lr, a.weight_decay)

    vocab = remap = None
    if not a.full_softmax:
        vocab, remap = vocab_remap(vocab_np, cfg.vocab_size, device)

    args_dict = vars(a)
    with open(os.path.join(a.out, "train-args.json"), "w") as f:
        json.dump(args_dict, f, indent=2)
    print(
        f"model: {count_parameters(model):,} parameters {json.dumps(cfg.to_dict())} on {device}\n"
        f"data: {len(ds)} conversations, {ds.header['tokens']} tokens, {ds.header['trained_tokens']} trained, "
        f"corpus vocabulary {len(vocab_np)} tokens",
        file=sys.stderr,
    )
    log = open(os.path.join(a.out, "train-log.jsonl"), "a")
    model.train()
    t0 = time.time()
    win_loss, win_tok, win_t = 0.0, 0, time.time()
    total_tok = 0
    stop = a.steps if a.stop_after is None else min(a.steps, a.stop_after)
    for step, inputs_np, labels_np, ntok in iterate(ds, a.batch_size, a.steps, a.seed, EOT, a.max_len, start):
        if step >= stop:
            break
        lr = lr_at(step, a.lr, a.warmup, a.steps, a.min_lr_ratio)
        for g in opt.param_groups:
            g["lr"] = lr
        inputs, labels = torch.from_numpy(inputs_np).to(device), torch.from_numpy(labels_np).to(device)
        loss = masked_loss(model, inputs, labels, vocab, remap)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()

        win_loss += loss.item()
        win_tok += ntok
        total_tok += ntok
        done = step + 1
        if done % a.log_every == 0 or done == stop:
            dt = time.time() - win_t
            n = a.log_every if done % a.log_every == 0 else done % a.log_every
            rec = {"step": done, "loss": win_loss / n, "lr": lr, "grad_norm": float(gnorm), "tok_per_s": win_tok / dt, "elapsed_s": time.time() - t0}
            print(
                f"step {done}/{a.steps} loss {rec['loss']:.4f} lr {lr:.2e} gnorm {rec['grad_norm']:.2f} "
                f"tok/s {rec['tok_per_s']:.0f} elapsed {rec['elapsed_s']:.0f}s",
                file=sys.stderr,
                flush=True,
            )
            log.write(json.dumps(rec) + "\n")
            log.flush()
            win_loss, win_tok, win_t = 0.0, 0, time.time()
        if done % a.ckpt_every == 0 or done == stop:
            save_checkpoint(ckpt_path, model, opt, done, args_dict, vocab_np)
    elapsed = time.time() - t0
    summary = {"steps": stop, "elapsed_s": elapsed, "tokens": total_tok, "tok_per_s": total_tok / max(elapsed, 1e-9)}
    if stop == a.steps:
        save_checkpoint(os.path.join(a.out, "final.pt"), model, opt, stop, args_dict, vocab_np)
        with open(os.path.join(a.out, "train-summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
    print(f"trained {stop - start} steps in {elapsed:.0f}s, {summary['tok_per_s']:.0f} tokens/s", file=sys.stderr)


if __name__ == "__main__":
    main()
