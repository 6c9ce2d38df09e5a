"""Fine-tune a served MM-Rec model directory: a resumable child process that reports
its progress as JSON lines on stdout (kit/README.md, "Fine-tune a served model").

    cd kit && /usr/bin/python3 -m mmrec.finetune --base-model ../models/mm-rec-tiny --train X.mmrecds --out ../runs/ft

--method full trains every weight (and the initial state, if the base has one) and
writes ordinary model directories; --method state trains only the initial
recurrent state (one vector per layer) of a frozen base and writes
initial-state directories (config.json + initial_state.bin, no model.onnx).

stdout carries only the protocol (one JSON object per line, flushed): started,
step (after every optimizer step), checkpoint (end of every epoch, once its model
directory is completely written), paused (after SIGTERM / SIGINT: the current step
finishes, <out>/resume.pt is saved, exit 0) and finished. Any error ends with one
`error: <message>` line on stderr and a non-zero exit status.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import signal
import sys
import time
import traceback
from typing import List, Optional

import numpy as np
import torch

from . import card
from .data import IGNORE, epoch_schedule, load_dataset, loss_tokens, make_batch
from .export import export_onnx, model_config
from .model import count_parameters, load_checkpoint
from .model_dir import INITIAL_STATE_FILE, ModelDirError, ServedModel, load_model_dir, sha256_file, state_shapes, write_initial_state
from .sft import EOT, UNSEEN_BIAS, loss_and_correct, lr_at, make_optimizer, resolve_device, vocab_remap

# Peak learning rate at --learning-rate-multiplier 1, per method. Full: a tenth of the
# from-scratch 3e-3, enough to teach the trained tiny model a new fact in a few epochs
# of ~200 conversations while it keeps its base skills (kit/README.md has the figures).
# State: the initial state is one vector per layer, far fewer and larger-scale
# parameters than the weights, and needs a larger step.
BASE_LR = {"full": 3e-4, "state": 1e-2}
WARMUP_FRACTION = 0.1  # of the total steps (at least one step), linear from lr/warmup
MIN_LR_RATIO = 0.1  # cosine decay to this fraction of the peak at the last step
WEIGHT_DECAY = 0.0  # fine-tuning starts from trained weights; decaying them towards zero is no prior worth having
CLIP = 1.0
# Batches come from pools of 64 batches sorted by length (less padding, as in mmrec.train),
# with the sort key log(length) jittered by ±LENGTH_JITTER: a fine-tuning set is often a
# single pool, which a plain sort would cut into the same batches at every epoch. On the
# newfact set (3 epochs of 25 batches): 1.065 padded tokens per real one (plain sort 1.05,
# ±0.2 jitter 1.18, random batches 2.7), and 71 of the 75 batches differ (plain sort: 51).
LENGTH_JITTER = 0.05
RESUME_FILE = "resume.pt"
RESUME_VERSION = 1
DEFAULTS = {"method": "full", "epochs": 3, "batch_size": 8, "learning_rate_multiplier": 1.0, "seed": 0, "max_len": 1024}


def new_token_bias(out_bias: torch.Tensor, base_seen: np.ndarray) -> float:
    """The output bias full fine-tuning gives a token that occurs in its data but that the
    base model never saw (bias UNSEEN_BIAS, which no affordable number of steps could lift):
    the lowest bias among the tokens the base was trained on, i.e. as unlikely as the base's
    least likely token until training raises it."""
    seen = out_bias.detach()[torch.from_numpy(np.nonzero(base_seen)[0]).to(out_bias.device)]
    return float(seen.min()) if seen.numel() else 0.0


class FinetuneError(Exception):
    """An error the user can act on: reported as `error: <message>` without a traceback."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own format ends with "prog: error: …"; the protocol wants "error: …" last
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr, flush=True)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python3 -m mmrec.finetune", description="Fine-tune a served MM-Rec model directory (JSON-lines progress on stdout).")
    ap.add_argument("--base-model", required=True, help="a model directory: an export (model.onnx + config.json) or an initial-state directory")
    ap.add_argument("--train", required=True, help="an .mmrecds file from `npm run prepare-data`")
    ap.add_argument("--out", required=True, help="run directory: checkpoints/step-<n>/, final/, resume.pt")
    ap.add_argument("--method", choices=["full", "state"], default=DEFAULTS["method"])
    ap.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    ap.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"], help="conversations per step (more than the data has: all of them)")
    ap.add_argument("--learning-rate-multiplier", type=float, default=DEFAULTS["learning_rate_multiplier"],
                    help=f"peak LR = this × {BASE_LR['full']} (full) or × {BASE_LR['state']} (state)")
    ap.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: the CPUs this process may use)")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, …")
    ap.add_argument("--max-len", type=int, default=DEFAULTS["max_len"], help="conversations are cut to this many input tokens")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out from resume.pt")
    ap.add_argument("--model-id", help="model_id written into the exported config.json files (default: ft:<base model id>)")
    return ap


class Protocol:
    """The JSON-lines channel. fd 1 is re-pointed at stderr so that nothing else (a stray
    print, a native library) can write into it; events go to a private copy of the old fd 1."""

    def __init__(self):
        sys.stdout.flush()
        self._f = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def emit(self, event: str, **fields) -> None:
        self._f.write(json.dumps({"event": event, **fields}, allow_nan=False) + "\n")
        self._f.flush()


class PauseRequest:
    def __init__(self):
        self.signal: Optional[int] = None
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, _frame):
        if self.signal is None:
            print(f"{signal.Signals(signum).name}: pausing after the current step", file=sys.stderr, flush=True)
        self.signal = signum

    @property
    def requested(self) -> bool:
        return self.signal is not None


def _check_args(a) -> None:
    for name, v, low in (("--epochs", a.epochs, 1), ("--batch-size", a.batch_size, 1), ("--max-len", a.max_len, 1)):
        if v < low:
            raise FinetuneError(f"{name} must be at least {low} (got {v})")
    if a.threads is not None and a.threads < 1:
        raise FinetuneError(f"--threads must be at least 1 (got {a.threads})")
    if not (math.isfinite(a.learning_rate_multiplier) and a.learning_rate_multiplier > 0):
        raise FinetuneError(f"--learning-rate-multiplier must be a positive number (got {a.learning_rate_multiplier})")
    if a.epochs > 1000:
        raise FinetuneError(f"--epochs {a.epochs}: at most 1000")


def _strip(cfg: dict) -> dict:
    out = copy.deepcopy(cfg)
    for k in ("initial_state", "base_model", "fine_tune"):
        out.pop(k, None)
    return out


class Run:
    def __init__(self, a, proto: Protocol, pause: PauseRequest):
        self.a, self.proto, self.pause = a, proto, pause
        self.out = os.path.abspath(a.out)
        self.resume_path = os.path.join(self.out, RESUME_FILE)

    # ----------------------------------------------------------------- setup

    def setup(self) -> None:
        a = self.a
        _check_args(a)
        try:
            self.device = resolve_device(a.device)
        except SystemExit as e:
            raise FinetuneError(str(e)) from None
        self.threads = a.threads or len(os.sched_getaffinity(0))
        torch.set_num_threads(self.threads)
        if a.resume and not os.path.exists(self.resume_path):
            done = os.path.exists(os.path.join(self.out, "final"))
            raise FinetuneError(f"--resume: {self.resume_path} does not exist" + (" (this run has finished: final/ exists)" if done else ""))
        if not a.resume and (os.path.exists(self.resume_path) or os.path.exists(os.path.join(self.out, "final"))):
            raise FinetuneError(f"--out {self.out} already holds a run; pass --resume to continue it or choose a new directory")
        os.makedirs(self.out, exist_ok=True)

        self.train_path = os.path.abspath(a.train)
        try:
            self.ds = load_dataset(self.train_path)
        except (OSError, ValueError, KeyError) as e:
            raise FinetuneError(f"--train {a.train}: cannot read the dataset ({e})") from e
        if len(self.ds) == 0:
            raise FinetuneError(f"--train {a.train}: the dataset has no conversations")
        self.data_sha = sha256_file(self.train_path)
        try:
            self.base: ServedModel = load_model_dir(a.base_model)
        except ModelDirError as e:
            raise FinetuneError(f"--base-model {a.base_model}: {e}") from e
        self.model_id = a.model_id or f"ft:{self.base.model_id}"

        # Examples that keep at least one loss position once cut to --max-len.
        lt = loss_tokens(self.ds, a.max_len)
        self.examples = np.nonzero(lt > 0)[0]
        self.skipped = len(self.ds) - len(self.examples)
        if len(self.examples) == 0:
            raise FinetuneError(f"--max-len {a.max_len}: no conversation keeps an assistant token within that length")
        if self.skipped:
            print(f"warning: {self.skipped} conversations have no assistant token within --max-len {a.max_len} and are left out", file=sys.stderr)
        self.truncated = int(((self.ds.lengths() - 1) > a.max_len).sum())
        self.tokens_per_epoch = int(lt.sum())
        self.batch_size = min(a.batch_size, len(self.examples))
        self.steps_per_epoch = math.ceil(len(self.examples) / self.batch_size)
        self.total = self.steps_per_epoch * a.epochs
        self.lr = BASE_LR[a.method] * a.learning_rate_multiplier
        self.warmup = max(1, round(WARMUP_FRACTION * self.total))
        self.hparams = {
            "n_epochs": a.epochs, "batch_size": self.batch_size, "learning_rate_multiplier": a.learning_rate_multiplier,
            "learning_rate": self.lr, "base_learning_rate": BASE_LR[a.method], "warmup_steps": self.warmup, "min_lr_ratio": MIN_LR_RATIO,
            "weight_decay": WEIGHT_DECAY if a.method == "full" else 0.0, "clip": CLIP, "max_len": a.max_len,
        }
        # What a resumed run must agree on to continue the same run.
        self.identity = {
            "method": a.method, "seed": a.seed, "n_epochs": a.epochs, "batch_size": a.batch_size, "learning_rate_multiplier": a.learning_rate_multiplier,
            "max_len": a.max_len, "train_sha256": self.data_sha, "base_graph_sha256": self.base.graph_sha256,
            "base_initial_state_sha256": self.base.initial_state_sha256, "model_id": self.model_id,
        }

        torch.manual_seed(a.seed)
        self.model = self.base.model
        cfg = self.model.cfg
        # Tokens the base model was trained on: every token whose bias is not the unseen
        # bias. The training softmax covers them and every token of the data.
        base_seen = (self.model.out_bias.detach() != UNSEEN_BIAS).numpy()
        data_vocab = self.ds.vocabulary()
        self.new_tokens = data_vocab[~base_seen[data_vocab]]
        self.train_vocab = np.union1d(np.nonzero(base_seen)[0], data_vocab)

        self.model.to(self.device)
        if a.method == "state" or self.base.initial_state is not None:
            init = self.base.initial_state or [torch.zeros(s) for s in state_shapes(cfg)]
            self.h0: Optional[List[torch.nn.Parameter]] = [torch.nn.Parameter(t.clone().float().to(self.device)) for t in init]
        else:
            self.h0 = None  # full fine-tuning of a zero-start model keeps the zero start (an ordinary export)
        if a.method == "full":
            if len(self.new_tokens):
                with torch.no_grad():
                    self.model.out_bias[torch.from_numpy(self.new_tokens).to(self.device)] = new_token_bias(self.model.out_bias, base_seen)
            trainable = list(self.model.parameters()) + (self.h0 or [])
        else:
            for p in self.model.parameters():
                p.requires_grad_(False)
            trainable = list(self.h0)
            if len(self.new_tokens):
                print(f"warning: {len(self.new_tokens)} token ids of the data were never seen by the base model (output bias {UNSEEN_BIAS}); "
                      f"state tuning leaves the weights as they are, so the tuned model will not produce them", file=sys.stderr)
        self.trainable = trainable
        self.opt = make_optimizer(trainable, self.lr, self.hparams["weight_decay"])
        self.vocab, self.remap = vocab_remap(self.train_vocab, cfg.vocab_size, self.device)
        self.schedule = epoch_schedule(self.ds.lengths(), self.batch_size, a.epochs, a.seed, self.examples, jitter=LENGTH_JITTER)
        assert len(self.schedule) == self.total

        self.step = 0
        self.stats = {"trained_tokens": 0, "processed_tokens": 0, "elapsed_s": 0.0, "step_s": 0.0,
                      "epoch_loss_sum": 0.0, "epoch_correct": 0, "epoch_tokens": 0, "checkpoints": []}
        if a.resume:
            self._load_resume()

    def _load_resume(self) -> None:
        try:
            r = load_checkpoint(self.resume_path)
        except Exception as e:
            raise FinetuneError(f"{self.resume_path}: cannot read ({e})") from e
        if r.get("version") != RESUME_VERSION:
            raise FinetuneError(f"{self.resume_path}: unsupported resume state version {r.get('version')}")
        diff = {k: (r["identity"].get(k), v) for k, v in self.identity.items() if r["identity"].get(k) != v}
        if diff:
            what = ", ".join(f"{k} was {old!r}, now {new!r}" for k, (old, new) in diff.items())
            raise FinetuneError(f"--resume: the arguments, data or base model differ from the run in {self.out} ({what})")
        if [b.tolist() for b in self.schedule] != r["schedule"]:
            raise FinetuneError(f"{self.resume_path}: the saved data order differs from this run's")
        self.train_vocab = np.asarray(r["train_vocab"], dtype=np.int64)
        self.new_tokens = np.asarray(r["new_tokens"], dtype=np.int64)
        self.vocab, self.remap = vocab_remap(self.train_vocab, self.model.cfg.vocab_size, self.device)
        with torch.no_grad():
            if r["model"] is not None:
                self.model.load_state_dict(r["model"])
            if r["h0"] is not None:
                for p, v in zip(self.h0, r["h0"]):
                    p.copy_(v)
        self.opt.load_state_dict(r["optimizer"])
        torch.set_rng_state(r["rng"])
        if r.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(r["cuda_rng"], self.device)
        self.step = int(r["step"])
        self.stats = r["stats"]
        print(f"resumed from {self.resume_path} at step {self.step}", file=sys.stderr, flush=True)

    def _save_resume(self) -> None:
        state = {
            "version": RESUME_VERSION, "step": self.step, "identity": self.identity, "hyperparameters": self.hparams,
            "model": self.model.state_dict() if self.a.method == "full" else None,
            "h0": [h.detach().cpu() for h in self.h0] if self.h0 is not None else None,
            "optimizer": self.opt.state_dict(), "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "schedule": [b.tolist() for b in self.schedule], "train_vocab": self.train_vocab.tolist(), "new_tokens": self.new_tokens.tolist(),
            "stats": self.stats,
        }
        tmp = self.resume_path + ".tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.resume_path)  # atomic: an interrupted save leaves the previous state

    # ----------------------------------------------------------------- artifacts

    def _fine_tune_info(self, epoch: int) -> dict:
        s = self.stats
        n = max(1, s["epoch_tokens"])
        return {
            "method": self.a.method,
            "from_model": {"model_id": self.base.model_id, "path": self.base.path},
            "training_file": {"path": self.train_path, "sha256": self.data_sha, "examples": len(self.ds), "examples_used": int(len(self.examples))},
            "hyperparameters": self.hparams, "seed": self.a.seed,
            "step": self.step, "total_steps": self.total, "epoch": epoch, "trained_tokens": s["trained_tokens"],
            "train_loss": s["epoch_loss_sum"] / n, "train_mean_token_accuracy": s["epoch_correct"] / n,
            "elapsed_s": round(s["elapsed_s"], 3), "new_tokens": int(len(self.new_tokens)), "torch": torch.__version__,
        }

    def _write_model_dir(self, dest: str, model_id: str, info: dict) -> None:
        """Write a complete model directory beside `dest`, then rename it into place."""
        parent = os.path.dirname(dest)
        os.makedirs(parent, exist_ok=True)
        tmp = os.path.join(parent, f".{os.path.basename(dest)}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        cfg = _strip(self.base.config)
        cfg["model_id"] = model_id
        if self.a.method == "full":
            cpu_model = copy.deepcopy(self.model).cpu()
            export_onnx(cpu_model, os.path.join(tmp, "model.onnx"))
            cfg["model"] = model_config(cpu_model, model_id, True)["model"]
            cfg.update(weights_dtype="float16", trained=True)
        if self.h0 is not None:
            write_initial_state(os.path.join(tmp, INITIAL_STATE_FILE), self.h0)
            cfg["initial_state"] = {"file": INITIAL_STATE_FILE, "dtype": "float32", "shapes": state_shapes(self.model.cfg),
                                    "sha256": sha256_file(os.path.join(tmp, INITIAL_STATE_FILE))}
        if self.a.method == "state":
            cfg["base_model"] = {"path": self.base.graph_dir, "model_id": self.base.graph_model_id, "sha256": self.base.graph_sha256}
        cfg["fine_tune"] = info
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        with open(os.path.join(tmp, "README.md"), "w") as f:
            f.write(card.render_finetune(cfg, tmp))
        if os.path.exists(dest):  # a checkpoint rewritten after a resume from an earlier state: same weights
            shutil.rmtree(dest)
        os.rename(tmp, dest)

    # ----------------------------------------------------------------- training

    def _metrics(self) -> dict:
        s = self.stats
        return {"trained_tokens": s["trained_tokens"], "processed_tokens": s["processed_tokens"], "elapsed_s": round(s["elapsed_s"], 3),
                "tokens_per_s": round(s["processed_tokens"] / max(s["step_s"], 1e-9), 1)}

    def train_step(self, idx: np.ndarray, lr: float):
        """One optimizer step on conversations `idx`: (loss, argmax hits, loss tokens, real input tokens)."""
        inputs_np, labels_np, real = make_batch(self.ds, list(idx), EOT, self.a.max_len)
        inputs = torch.from_numpy(inputs_np).to(self.device)
        labels = torch.from_numpy(labels_np).to(self.device)
        for g in self.opt.param_groups:
            g["lr"] = lr
        state = [h.unsqueeze(0).expand(inputs.size(0), *h.shape) for h in self.h0] if self.h0 is not None else None
        loss, correct = loss_and_correct(self.model, inputs, labels, self.vocab, self.remap, state, count_correct=True)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.trainable, CLIP)
        self.opt.step()
        return float(loss.item()), int(correct.item()), int((labels_np != IGNORE).sum()), int(real)

    def train(self) -> int:
        a, s = self.a, self.stats
        cfg = self.model.cfg
        n_params = count_parameters(self.model) + (sum(h.numel() for h in self.h0) if self.h0 is not None else 0)
        self.proto.emit(
            "started", method=a.method, epochs=a.epochs, steps_per_epoch=self.steps_per_epoch, total_steps=self.total,
            examples=int(len(self.examples)), trained_tokens_per_epoch=self.tokens_per_epoch, parameters=n_params,
            trainable_parameters=sum(p.numel() for p in self.trainable), batch_size=self.batch_size, learning_rate=self.lr,
            resumed_from_step=self.step, skipped_examples=self.skipped, truncated_examples=self.truncated, new_tokens=int(len(self.new_tokens)),
            warmup_steps=self.warmup, seed=a.seed, device=str(self.device), threads=self.threads, model_id=self.model_id,
        )
        print(f"fine-tuning {self.base.model_id} ({a.method}): {self.total} steps, {len(self.examples)} conversations × {a.epochs} epochs, "
              f"batch {self.batch_size}, peak LR {self.lr:g}, softmax over {len(self.train_vocab)} tokens ({len(self.new_tokens)} new), "
              f"on {self.device} with {self.threads} threads", file=sys.stderr, flush=True)
        self.model.train()
        seg_start = time.time()
        seg_base = s["elapsed_s"]
        while self.step < self.total:
            if self.pause.requested:
                s["elapsed_s"] = seg_base + time.time() - seg_start
                self._save_resume()
                self.proto.emit("paused", step=self.step)
                return 0
            t0 = time.time()
            lr = lr_at(self.step, self.lr, self.warmup, self.total, MIN_LR_RATIO)
            loss_v, correct, ntok, real = self.train_step(self.schedule[self.step], lr)
            if not math.isfinite(loss_v):
                raise FinetuneError(f"training diverged: the loss at step {self.step + 1} is {loss_v} (try a smaller --learning-rate-multiplier)")
            acc = correct / ntok
            self.step += 1
            now = time.time()
            s["step_s"] += now - t0
            s["elapsed_s"] = seg_base + now - seg_start
            s["trained_tokens"] += ntok
            s["processed_tokens"] += int(real)
            s["epoch_loss_sum"] += loss_v * ntok
            s["epoch_correct"] += correct
            s["epoch_tokens"] += ntok
            epoch = (self.step - 1) // self.steps_per_epoch + 1
            self.proto.emit("step", step=self.step, epoch=epoch, train_loss=round(loss_v, 6), train_mean_token_accuracy=round(acc, 6),
                            learning_rate=lr, **self._metrics())
            if self.step % self.steps_per_epoch == 0:
                self._checkpoint(epoch)
                s["elapsed_s"] = seg_base + time.time() - seg_start
        s["elapsed_s"] = seg_base + time.time() - seg_start
        self._finish()
        return 0

    def _checkpoint(self, epoch: int) -> None:
        s = self.stats
        info = self._fine_tune_info(epoch)
        dest = os.path.join(self.out, "checkpoints", f"step-{self.step}")
        self._write_model_dir(dest, f"{self.model_id}:ckpt-step-{self.step}", info)
        loss, acc = info["train_loss"], info["train_mean_token_accuracy"]
        s["checkpoints"].append({"step": self.step, "epoch": epoch, "model_dir": dest, "train_loss": loss, "train_mean_token_accuracy": acc})
        s["epoch_loss_sum"], s["epoch_correct"], s["epoch_tokens"] = 0.0, 0, 0
        s["last_epoch"] = {"epoch": epoch, "train_loss": loss, "train_mean_token_accuracy": acc}
        self._save_resume()
        self.proto.emit("checkpoint", step=self.step, epoch=epoch, model_dir=dest, train_loss=round(loss, 6), train_mean_token_accuracy=round(acc, 6))

    def _finish(self) -> None:
        s = self.stats
        last = s["checkpoints"][-1]
        dest = os.path.join(self.out, "final")
        parent_tmp = os.path.join(self.out, f".final.tmp-{os.getpid()}")
        shutil.rmtree(parent_tmp, ignore_errors=True)
        shutil.copytree(last["model_dir"], parent_tmp)
        cfg = json.load(open(os.path.join(parent_tmp, "config.json")))
        cfg["model_id"] = self.model_id
        cfg["fine_tune"]["elapsed_s"] = round(s["elapsed_s"], 3)
        with open(os.path.join(parent_tmp, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        with open(os.path.join(parent_tmp, "README.md"), "w") as f:
            f.write(card.render_finetune(cfg, parent_tmp))
        if os.path.exists(dest):
            shutil.rmtree(dest)
        os.rename(parent_tmp, dest)
        os.remove(self.resume_path)  # the run is complete; its final model is the artifact
        self.proto.emit("finished", step=self.step, model_dir=dest, **self._metrics())


def main(argv: Optional[List[str]] = None) -> int:
    a = build_parser().parse_args(argv)
    proto = Protocol()
    pause = PauseRequest()
    try:
        run = Run(a, proto, pause)
        run.setup()
        return run.train()
    except FinetuneError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    except Exception as e:  # a bug or an environment failure: the traceback for the log, then the one-line summary last
        traceback.print_exc(file=sys.stderr)
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"error: {type(e).__name__}: {msg}" if msg else f"error: {type(e).__name__}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
