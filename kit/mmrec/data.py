"""Reader of the MMRECDS1 training-data binary written by `npm run prepare-data`
(format documented at the top of src/chat/dataset.ts), and batching.

A batch is right-padded conversations: inputs = ids[:-1], labels = ids[1:] where
the mask marks the target, else -100. Right padding is harmless for a recurrent
model: padded positions come after every real token of a row and carry no loss.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Iterator, List, Tuple

import numpy as np

MAGIC = b"MMRECDS1"
IGNORE = -100


@dataclass
class ChatDataset:
    header: dict
    offsets: np.ndarray  # u64 [N+1]
    tokens: np.ndarray  # u32 [T]
    mask: np.ndarray  # u8 [T]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets).astype(np.int64)

    def conversation(self, i: int) -> Tuple[np.ndarray, np.ndarray]:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.tokens[a:b], self.mask[a:b]

    def vocabulary(self) -> np.ndarray:
        """Sorted ids of every token that occurs in the data (inputs and targets)."""
        return np.unique(self.tokens).astype(np.int64)


def load_dataset(path: str) -> ChatDataset:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw[:8].tobytes() != MAGIC:
        raise ValueError(f"{path}: not an MMRECDS1 file (bad magic)")
    (hlen,) = struct.unpack("<I", raw[8:12].tobytes())
    header = json.loads(raw[12 : 12 + hlen].tobytes().decode("utf-8"))
    if header.get("version") != 1:
        raise ValueError(f"{path}: unsupported dataset version {header.get('version')}")
    n, t = int(header["conversations"]), int(header["tokens"])
    o = 12 + hlen
    if o % 8 != 0:
        raise ValueError(f"{path}: offsets are not 8-byte aligned")
    offsets = raw[o : o + 8 * (n + 1)].view("<u8")
    o += 8 * (n + 1)
    tokens = raw[o : o + 4 * t].view("<u4")
    o += 4 * t
    mask = raw[o : o + t]
    if len(mask) != t or int(offsets[-1]) != t:
        raise ValueError(f"{path}: truncated or inconsistent (header says {t} tokens)")
    return ChatDataset(header=header, offsets=offsets, tokens=tokens, mask=mask)


def make_batch(ds: ChatDataset, idx: List[int], pad_id: int, max_len: int) -> Tuple[np.ndarray, np.ndarray, int]:
    """(inputs [B, T] int64, labels [B, T] int64 with -100 where untrained, number of
    real (non-padding) input tokens); conversations longer than max_len + 1 tokens are cut."""
    convs = [ds.conversation(i) for i in idx]
    T = min(max_len, max(len(ids) for ids, _ in convs) - 1)
    inputs = np.full((len(idx), T), pad_id, dtype=np.int64)
    labels = np.full((len(idx), T), IGNORE, dtype=np.int64)
    real = 0
    for r, (ids, m) in enumerate(convs):
        n = min(T, len(ids) - 1)
        real += n
        inputs[r, :n] = ids[:n]
        lab = ids[1 : n + 1].astype(np.int64)
        labels[r, :n] = np.where(m[1 : n + 1] == 1, lab, IGNORE)
    return inputs, labels, real


def batch_schedule(lengths: np.ndarray, batch_size: int, steps: int, seed: int, pool: int = 64) -> List[np.ndarray]:
    """Conversation indices for every step, fixed by (seed, step) so that a resumed
    run sees exactly the batches an uninterrupted one would.

    Each epoch shuffles, then sorts pools of `pool` batches by length so a batch's
    rows have similar lengths (little padding, short recurrence loops), then
    shuffles the batch order.
    """
    rng = np.random.default_rng(seed)
    out: List[np.ndarray] = []
    n = len(lengths)
    while len(out) < steps:
        perm = rng.permutation(n)
        epoch = []
        for p in range(0, n, pool * batch_size):
            chunk = perm[p : p + pool * batch_size]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            epoch += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size) if len(chunk[i : i + batch_size]) == batch_size]
        order = rng.permutation(len(epoch))
        out += [epoch[i] for i in order]
    return out[:steps]


def epoch_schedule(lengths: np.ndarray, batch_size: int, epochs: int, seed: int, examples=None, pool: int = 64, jitter: float = 0.0) -> List[np.ndarray]:
    """Conversation indices for every step of `epochs` full passes over `examples`
    (default: every conversation), fixed by the seed.

    Like batch_schedule, each epoch shuffles, sorts pools of `pool` batches by length
    and shuffles the batch order; but every example is used once per epoch, so the
    epoch's last pool may end in a smaller batch: ceil(n / batch_size) steps per epoch.
    `jitter` > 0 sorts by log(length) + U(-jitter, jitter) instead, so that a data set
    of one pool is not cut into the same batches at every epoch.
    """
    rng = np.random.default_rng(seed)
    ex = np.arange(len(lengths)) if examples is None else np.asarray(examples, dtype=np.int64)
    out: List[np.ndarray] = []
    for _ in range(epochs):
        perm = ex[rng.permutation(len(ex))]
        batches = []
        for p in range(0, len(perm), pool * batch_size):
            chunk = perm[p : p + pool * batch_size]
            key = np.log(np.maximum(lengths[chunk], 1)).astype(np.float64)
            if jitter > 0:
                key = key + rng.uniform(-jitter, jitter, len(chunk))
            chunk = chunk[np.argsort(key, kind="stable")]
            batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        order = rng.permutation(len(batches))
        out += [batches[i] for i in order]
    return out


def loss_tokens(ds: ChatDataset, max_len: int) -> np.ndarray:
    """Per conversation, the number of positions that carry a loss once make_batch cuts it to max_len inputs."""
    csum = np.concatenate([[0], np.cumsum(ds.mask, dtype=np.int64)])
    start = ds.offsets[:-1].astype(np.int64)
    n = np.minimum(max_len, ds.lengths() - 1)
    return csum[start + 1 + n] - csum[start + 1]


def iterate(
    ds: ChatDataset, batch_size: int, steps: int, seed: int, pad_id: int, max_len: int, start: int = 0
) -> Iterator[Tuple[int, np.ndarray, np.ndarray, int]]:
    """(step, inputs, labels, real tokens) for steps start..steps-1."""
    sched = batch_schedule(ds.lengths(), batch_size, steps, seed)
    for step in range(start, steps):
        yield (step, *make_batch(ds, list(sched[step]), pad_id, max_len))
