"""Served model directories, read back into PyTorch (the kit's README describes the formats).

Two kinds of directory:
- an ordinary export: `model.onnx` + `config.json` (+ `README.md`), as mmrec.export writes it;
  optionally with an `initial_state` (config.json) in `initial_state.bin`: sequences then
  start from that state instead of zeros (a fully fine-tuned state-tuned model);
- an initial-state directory (state tuning): `config.json` with `initial_state` and
  `base_model` {path, model_id, sha256} naming the directory whose `model.onnx` is the
  graph, `initial_state.bin`, `README.md`, and no `model.onnx`.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch

from .model import MMRec, MMRecConfig
from .onnx_weights import WeightRecoveryError, recover

INITIAL_STATE_FILE = "initial_state.bin"


class ModelDirError(ValueError):
    pass


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_config(path: str) -> dict:
    cfg_path = os.path.join(path, "config.json")
    if not os.path.isdir(path):
        raise ModelDirError(f"{path}: not a directory")
    try:
        with open(cfg_path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise ModelDirError(f"{cfg_path}: cannot read a JSON config ({e})") from e
    if not isinstance(cfg, dict) or cfg.get("architecture") != "mm-rec" or not isinstance(cfg.get("model"), dict):
        raise ModelDirError(f"{cfg_path}: not an MM-Rec model config (needs \"architecture\": \"mm-rec\" and a \"model\" section)")
    return cfg


@dataclass
class ServedModel:
    path: str  # the directory that was loaded (absolute)
    config: dict  # its config.json
    model: MMRec  # float32 parameters equal to the stored (fp16) weights
    initial_state: Optional[List[torch.Tensor]]  # one [D] tensor per layer; None: sequences start from zeros
    graph_dir: str  # the directory whose model.onnx is the graph (== path unless state-tuned)
    graph_sha256: str
    graph_model_id: str

    @property
    def model_id(self) -> str:
        return str(self.config.get("model_id") or os.path.basename(self.path))

    @property
    def initial_state_sha256(self) -> Optional[str]:
        return sha256_file(os.path.join(self.path, INITIAL_STATE_FILE)) if self.initial_state is not None else None


def state_shapes(cfg: MMRecConfig) -> List[List[int]]:
    return [[cfg.d_model] for _ in range(cfg.n_layers)]


def read_initial_state(path: str, spec: dict, shapes: List[List[int]]) -> List[torch.Tensor]:
    """The per-layer initial state that `spec` (config.json's "initial_state") describes."""
    if not isinstance(spec, dict) or spec.get("dtype") != "float32" or not isinstance(spec.get("file"), str):
        raise ModelDirError(f"{path}: config.json's initial_state must be {{\"file\", \"dtype\": \"float32\", \"shapes\"}}")
    if spec.get("shapes") != shapes:
        raise ModelDirError(f"{path}: initial_state shapes {spec.get('shapes')} are not the model's state shapes {shapes}")
    file = os.path.join(path, os.path.basename(spec["file"]))
    try:
        raw = np.fromfile(file, dtype="<f4")
    except OSError as e:
        raise ModelDirError(f"{file}: cannot read the initial state ({e})") from e
    want = sum(int(np.prod(s)) for s in shapes)
    if raw.size != want or os.path.getsize(file) != 4 * want:
        raise ModelDirError(f"{file}: {os.path.getsize(file)} bytes, expected {4 * want} (float32 {shapes})")
    if not np.isfinite(raw).all():
        raise ModelDirError(f"{file}: the initial state has non-finite values")
    if spec.get("sha256") and sha256_file(file) != spec["sha256"]:
        raise ModelDirError(f"{file}: sha256 differs from config.json's initial_state.sha256")
    out, o = [], 0
    for s in shapes:
        n = int(np.prod(s))
        out.append(torch.from_numpy(raw[o : o + n].astype(np.float32).reshape(s)))
        o += n
    return out


def write_initial_state(file: str, state: List[torch.Tensor]) -> None:
    """Raw little-endian float32, layer 0 first, each tensor in C order."""
    np.concatenate([s.detach().cpu().float().numpy().astype("<f4").ravel() for s in state]).tofile(file)


def load_model_dir(path: str) -> ServedModel:
    path = os.path.abspath(path)
    cfg = read_config(path)
    base = cfg.get("base_model")
    if base is not None:
        if not isinstance(base, dict) or not isinstance(base.get("path"), str):
            raise ModelDirError(f"{path}: config.json's base_model must be {{\"path\", \"model_id\", \"sha256\"}}")
        graph_dir = os.path.normpath(os.path.join(path, base["path"]))  # an absolute path stays as is
        if "initial_state" not in cfg:
            raise ModelDirError(f"{path}: a directory with base_model must have an initial_state")
    else:
        graph_dir = path
    onnx_path = os.path.join(graph_dir, "model.onnx")
    if not os.path.isfile(onnx_path):
        raise ModelDirError(f"{onnx_path}: no such file" + (" (the base model this initial state applies to)" if base is not None else ""))
    graph_sha = sha256_file(onnx_path)
    if base is not None and base.get("sha256") and base["sha256"] != graph_sha:
        raise ModelDirError(f"{onnx_path}: its sha256 is not the one {path}/config.json's base_model names (the base model changed)")
    graph_cfg = read_config(graph_dir) if graph_dir != path else cfg
    mcfg = MMRecConfig.from_dict(graph_cfg["model"])
    try:
        model = recover(onnx_path, mcfg)
    except WeightRecoveryError as e:
        raise ModelDirError(str(e)) from e
    init = None
    if "initial_state" in cfg:
        init = read_initial_state(path, cfg["initial_state"], state_shapes(mcfg))
    return ServedModel(path, cfg, model, init, graph_dir, graph_sha, str(graph_cfg.get("model_id") or os.path.basename(graph_dir)))
