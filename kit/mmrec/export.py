"""Export an MM-Rec model to a served model directory (MM-REC.md §3).

    cd kit && /usr/bin/python3 -m mmrec.export --random --preset tiny --out ../models/mm-rec-tiny
    cd kit && /usr/bin/python3 -m mmrec.export --checkpoint ../runs/tiny/final.pt --out ../models/mm-rec-tiny

Writes model.onnx (opset 17; weights as fp16 initializers followed by Casts, so
the graph computes in float32 and runs on the CPU execution provider),
config.json and, unless one is already there, a placeholder README.md.
"""
from __future__ import annotations

import argparse
import copy
import inspect
import json
import os
import sys
from typing import List, Optional

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper

from .model import MMRec, MMRecConfig, PRESETS, count_parameters, get_config, load_checkpoint

OPSET = 17
SPECIAL_TOKENS = {
    "<|endoftext|>": 100257,
    "<|system|>": 100261,
    "<|user|>": 100262,
    "<|assistant|>": 100263,
    "<|tool|>": 100264,
    "<|tools|>": 100265,
    "<|tool_call|>": 100266,
}
# Initializers smaller than this stay float32: they are scalars and tiny
# constants (e.g. the 1 - 1e-6 clamp bound, which fp16 would round to 1.0).
MIN_FP16_NUMEL = 16


class _OnnxWrapper(nn.Module):
    """Flat signature for export: (input_ids, state_in.0, …) → (logits, state_out.0, …)."""

    def __init__(self, model: MMRec):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, *state: torch.Tensor):
        logits, new_state = self.model(input_ids, list(state))
        return (logits, *new_state)


def round_to_fp16(model: MMRec) -> MMRec:
    """A copy whose weights are exactly what the fp16 ONNX file stores, so the
    PyTorch model and the exported graph compute the same function."""
    m = copy.deepcopy(model).float().eval()
    with torch.no_grad():
        for p in m.parameters():
            if p.numel() >= MIN_FP16_NUMEL:
                p.copy_(p.half().float())
    return m


def weights_to_fp16(proto: onnx.ModelProto) -> int:
    """Store float32 initializers as float16 and Cast them back to float32 at load.

    The Cast node keeps the original tensor name, so every consumer (including the
    Loop body, which reads the recurrence weight from the outer scope) is untouched.
    Returns the number of converted initializers.
    """
    graph = proto.graph
    keep, casts = [], []
    converted = 0
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < MIN_FP16_NUMEL:
            keep.append(init)
            continue
        arr = numpy_helper.to_array(init).astype(np.float16)
        half = numpy_helper.from_array(arr, name=init.name + "__fp16")
        keep.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT, name=init.name + "__cast"))
        converted += 1
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    return converted


def loop_sequences_to_scan_outputs(proto: onnx.ModelProto) -> int:
    """Rewrite each recurrence Loop to emit h_t as a Loop *scan output* instead of
    appending it to a tensor sequence.

    torch.onnx exports `hs.append(h)` inside a scripted loop as SequenceEmpty →
    SequenceInsert (per iteration) → ConcatFromSequence(axis=1, new_axis=1). A scan
    output is the same value stacked as [T, B, D] by the Loop itself, which costs
    onnxruntime much less per iteration; a Transpose restores [B, T, D].
    Returns the number of Loops rewritten (0 leaves the graph untouched).
    """
    g = proto.graph
    producers = {o: n for n in g.node for o in n.output}
    consumers: dict = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    rewritten = 0
    drop, replace = set(), {}
    for loop in [n for n in g.node if n.op_type == "Loop"]:
        body = next(a.g for a in loop.attribute if a.name == "body")
        if len(loop.input) != 4 or len(loop.output) != 2 or len(body.input) != 4 or len(body.output) != 3:
            continue
        seq_empty = producers.get(loop.input[3])
        inserts = [n for n in body.node if n.op_type == "SequenceInsert" and n.input[0] == body.input[3].name]
        concat = consumers.get(loop.output[1], [])
        if seq_empty is None or seq_empty.op_type != "SequenceEmpty" or len(inserts) != 1 or len(concat) != 1 or concat[0].op_type != "ConcatFromSequence":
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in concat[0].attribute}
        if attrs.get("axis") != 1 or attrs.get("new_axis") != 1 or inserts[0].output[0] != body.output[2].name:
            continue
        ins = inserts[0]
        h_name = ins.input[1]
        scan_name = h_name + "__scan"
        body.node.remove(ins)
        body.node.append(helper.make_node("Identity", [h_name], [scan_name]))
        body.input.pop()  # the sequence is no longer loop-carried
        body.output.pop()
        body.output.append(helper.make_tensor_value_info(scan_name, TensorProto.FLOAT, None))
        stacked = loop.output[1] + "__stacked"
        del loop.input[3]
        loop.output[1] = stacked
        drop.add(id(seq_empty))
        replace[id(concat[0])] = helper.make_node("Transpose", [stacked], [concat[0].output[0]], perm=[1, 0, 2], name=concat[0].name + "__transpose")
        rewritten += 1
    nodes = [replace.get(id(n), n) for n in g.node if id(n) not in drop]
    del g.node[:]
    g.node.extend(nodes)
    return rewritten


def export_onnx(model: MMRec, path: str) -> None:
    """model → path (opset 17, dynamic batch and sequence axes, fp16 weights)."""
    model = round_to_fp16(model)
    L = model.cfg.n_layers
    ids = torch.zeros(2, 3, dtype=torch.long)
    state = tuple(torch.zeros(2, model.cfg.d_model) for _ in range(L))
    inputs = ["input_ids"] + [f"state_in.{i}" for i in range(L)]
    outputs = ["logits"] + [f"state_out.{i}" for i in range(L)]
    axes = {"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}}
    for i in range(L):
        axes[f"state_in.{i}"] = {0: "batch"}
        axes[f"state_out.{i}"] = {0: "batch"}
    tmp = path + ".fp32.tmp"
    # The TorchScript-based exporter turns the scripted recurrence into an ONNX Loop;
    # newer PyTorch defaults to the dynamo exporter, so ask for this one explicitly.
    extra = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with torch.no_grad():
        torch.onnx.export(
            _OnnxWrapper(model),
            (ids, *state),
            tmp,
            opset_version=OPSET,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            do_constant_folding=True,
            **extra,
        )
    proto = onnx.load(tmp)
    os.remove(tmp)
    weights_to_fp16(proto)
    rewritten = loop_sequences_to_scan_outputs(proto)
    if rewritten == 0:
        # A PyTorch whose exporter shapes the recurrence differently (none matched): the graph
        # still computes the same function, only each Loop step costs onnxruntime more.
        print("warning: the recurrence Loops keep the exporter's tensor sequences (no scan-output rewrite matched); "
              "the model is correct but slower to run", file=sys.stderr)
    elif rewritten != L:
        raise RuntimeError(f"only {rewritten} of {L} recurrence Loops had the expected shape; refusing a half-rewritten graph")
    loops = [n for n in proto.graph.node if n.op_type == "Loop"]
    if len(loops) != L:
        raise RuntimeError(f"expected {L} ONNX Loop nodes (one recurrence per layer), found {len(loops)}")
    onnx.checker.check_model(proto)
    onnx.save(proto, path)


def model_config(model: MMRec, model_id: str, trained: bool, context_length: int = 65536) -> dict:
    return {
        "model_id": model_id,
        "architecture": "mm-rec",
        "format_version": 1,
        "vocab_size": model.cfg.vocab_size,
        "context_length": context_length,
        "tokenizer": {"encoding": "cl100k_base", "special_tokens": dict(SPECIAL_TOKENS)},
        "chat_template": "mm-rec-chat-v1",
        "eos_token_ids": [SPECIAL_TOKENS["<|endoftext|>"]],
        "default_sampling": {"temperature": 0.7, "top_p": 0.9},
        "model": {**model.cfg.to_dict(), "parameters": count_parameters(model), "state_shapes": [[model.cfg.d_model]] * model.cfg.n_layers},
        "weights_dtype": "float16",
        "trained": trained,
    }


PLACEHOLDER_CARD = """# {model_id}

An **untrained** MM-Rec model with random weights ({params:,} parameters,
preset/config below). It emits random tokens; it exists to test and benchmark
the serving stack. Exported by `kit/mmrec/export.py --random`.

```json
{model}
```
"""


def export_dir(model: MMRec, out: str, model_id: str, trained: bool, card: Optional[str] = None) -> dict:
    """Write model.onnx, config.json and README.md into `out`; returns the config."""
    os.makedirs(out, exist_ok=True)
    export_onnx(model, os.path.join(out, "model.onnx"))
    cfg = model_config(model, model_id, trained)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    readme = os.path.join(out, "README.md")
    if card is not None:
        with open(readme, "w") as f:
            f.write(card)
    elif not trained or not os.path.exists(readme):
        with open(readme, "w") as f:
            f.write(PLACEHOLDER_CARD.format(model_id=model_id, params=count_parameters(model), model=json.dumps(model.cfg.to_dict(), indent=2)))
    return cfg


def load_checkpoint_model(path: str) -> MMRec:
    ckpt = load_checkpoint(path)
    model = MMRec(MMRecConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--random", action="store_true", help="export an untrained model with random weights")
    src.add_argument("--checkpoint", help="a checkpoint written by mmrec.train")
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="architecture for --random")
    ap.add_argument("--d-model", type=int)
    ap.add_argument("--n-layers", type=int)
    ap.add_argument("--d-ffn", type=int)
    ap.add_argument("--dpg-rank", type=int)
    ap.add_argument("--embed-rank", type=int, help="0 = plain tied D-dim embedding")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model-id", help="defaults to the output directory's name")
    ap.add_argument("--card", help="a model card (markdown) to copy to README.md")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)

    torch.manual_seed(a.seed)
    if a.random:
        over = dict(d_model=a.d_model, n_layers=a.n_layers, d_ffn=a.d_ffn, dpg_rank=a.dpg_rank)
        cfg = get_config(a.preset, **over)
        if a.embed_rank is not None:
            cfg.embed_rank = a.embed_rank or None
        model = MMRec(cfg)
    else:
        model = load_checkpoint_model(a.checkpoint)
    model_id = a.model_id or os.path.basename(os.path.normpath(a.out))
    card = open(a.card).read() if a.card else None
    cfg = export_dir(model, a.out, model_id, trained=not a.random, card=card)
    size = os.path.getsize(os.path.join(a.out, "model.onnx"))
    print(f"exported {model_id}: {cfg['model']['parameters']:,} parameters, model.onnx {size / 1e6:.1f} MB → {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
