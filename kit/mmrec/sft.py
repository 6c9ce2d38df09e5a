"""Pieces of supervised fine-tuning (assistant-only loss) shared by the from-scratch
trainer (`mmrec.train`) and the fine-tuner of served models (`mmrec.finetune`).

The loss is the mean cross-entropy over the positions that carry a label (the
assistant's output, see data.py). Two speed-ups, both exact for the loss being
optimised:
- the LM head is evaluated only at positions that carry a loss;
- the softmax is restricted to a training vocabulary (`vocab`): tokens outside it
  can never be targets, and their logits are fixed by the output bias, which is
  UNSEEN_BIAS for them (see MMRec.out_bias), so the exported model still produces
  full-vocabulary logits and never emits a token it was not trained on.
"""
from __future__ import annotations

import math
from typing import Iterable, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import IGNORE
from .model import MMRec

EOT = 100257
UNSEEN_BIAS = -20.0


def lr_at(step: int, peak: float, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to min_ratio × peak at `total`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def make_optimizer(params: Iterable[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW (β 0.9/0.95); no decay on 1-D tensors (norms, biases, initial states), decay on every matrix."""
    params = list(params)
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95), eps=1e-8
    )


def vocab_remap(vocab: np.ndarray, vocab_size: int, device) -> Tuple[torch.Tensor, torch.Tensor]:
    """(sorted training vocabulary ids, id → index into it or -1), on `device`."""
    v = torch.from_numpy(np.asarray(vocab, dtype=np.int64))
    remap = torch.full((vocab_size,), -1, dtype=torch.long)
    remap[v] = torch.arange(len(v))
    return v.to(device), remap.to(device)


def loss_and_correct(
    model: MMRec,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    vocab: Optional[torch.Tensor],
    remap: Optional[torch.Tensor],
    state: Optional[List[torch.Tensor]] = None,
    count_correct: bool = False,
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(mean cross-entropy over the positions whose label is not -100, number of those
    positions whose argmax over the training softmax is the target, if asked).

    `state` is the initial recurrent state per layer ([B, D] each); zeros when None."""
    if state is None:
        state = model.zero_state(inputs.size(0), inputs.device)
    x, _ = model.hidden(inputs, state)
    sel = labels != IGNORE
    h = x[sel]
    target = labels[sel]
    if vocab is None:
        logits = model.head(h)
    else:
        logits = model.head(h, vocab)
        target = remap[target]
    loss = F.cross_entropy(logits, target)
    correct = None
    if count_correct:
        with torch.no_grad():
            correct = (logits.argmax(-1) == target).sum()
    return loss, correct


def resolve_device(name: str) -> torch.device:
    """The torch device to train on; a CUDA device that is not there is an error, not a silent CPU run."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: CUDA is not available to this PyTorch ({torch.__version__})")
    return device
