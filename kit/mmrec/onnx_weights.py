"""Recover an MMRec's exact parameters from an exported model.onnx (no .pt needed).

The exporter stores weights as fp16 initializers behind Casts, under names that
are partly the parameters' (`model.embed`) and partly the exporter's own
(`onnx::MatMul_380`, transposed for MatMul); identical tensors may be shared
through Identity nodes. Names, initializer order and transpose folding depend on
the PyTorch version that exported the file, so none of them is trusted.

Instead every *use* of a weight in the graph gets a structural label: the shape
of the matrix as the consuming node applies it (after Cast / Identity / Transpose
chains and Gemm's transA/transB), whether it is used inside a subgraph (the
recurrence Loop), and the set of labels of every weight and graph input upstream
of that node. Labels depend only on the data flow (which weights feed which), so
they are the same in any export of the same architecture. A *probe* model with
distinct random values is exported through the kit's own exporter; matching its
initializers to its parameters by value (possibly transposed) gives label →
(parameter, orientation), and the labels of the file to load then say which
parameter each of its weights is. Anything ambiguous or missing is an error.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Tuple

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from .model import MMRec, MMRecConfig

FLOAT_TYPES = (TensorProto.FLOAT, TensorProto.FLOAT16)
PASS_THROUGH = ("Cast", "Identity", "Transpose")


class WeightRecoveryError(ValueError):
    pass


@dataclass
class _Weight:
    source: str  # initializer (or Constant node output) holding the data
    parity: int  # 1 if the value here is the source transposed
    dims: Tuple[int, ...]


@dataclass
class Site:
    """One use of a weight by a compute node."""

    source: str
    parity: int  # the matrix as the node applies it = source transposed `parity` times
    label: str


def _label(*parts) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:20]


def _subgraphs(node: onnx.NodeProto) -> List[onnx.GraphProto]:
    out = []
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            out.append(a.g)
        elif a.type == onnx.AttributeProto.GRAPHS:
            out.extend(a.graphs)
    return out


def _pass_through(node: onnx.NodeProto, w: _Weight) -> Optional[_Weight]:
    """The weight after a Cast / Identity / 2-D Transpose, or None if `node` is a compute node."""
    if node.op_type == "Identity":
        return w
    if node.op_type == "Cast":
        to = helper.get_attribute_value(next(a for a in node.attribute if a.name == "to"))
        return w if to in FLOAT_TYPES else None
    if node.op_type == "Transpose" and len(w.dims) == 2:
        perm = [helper.get_attribute_value(a) for a in node.attribute if a.name == "perm"]
        if not perm or list(perm[0]) == [1, 0]:
            return _Weight(w.source, w.parity ^ 1, w.dims[::-1])
    return None


def _applied(node: onnx.NodeProto, index: int, w: _Weight) -> Tuple[int, Tuple[int, ...]]:
    """(parity, dims) of the weight as the node applies it (Gemm's transA/transB count as transposes)."""
    if node.op_type == "Gemm" and index in (0, 1):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("transA" if index == 0 else "transB", 0):
            return w.parity ^ 1, w.dims[::-1]
    return w.parity, w.dims


def _subgraph_uses(graph: onnx.GraphProto, weights: Dict[str, _Weight]) -> Tuple[List[Tuple[int, Tuple[int, ...], str]], set]:
    """Inside a subgraph: the weights its compute nodes use [(parity, dims, source)], and the
    names of the other values it reads from enclosing scopes."""
    local = dict(weights)
    defined = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    uses, outer = [], set()
    for node in graph.node:
        if len(node.input) == 1 and node.input[0] in local and not _subgraphs(node):
            w = _pass_through(node, local[node.input[0]])
            if w is not None:
                local[node.output[0]] = w
                continue
        for k, n in enumerate(node.input):
            if n in local:
                p, d = _applied(node, k, local[n])
                uses.append((p, d, local[n].source))
            elif n and n not in defined:
                outer.add(n)
        for sg in _subgraphs(node):
            u, o = _subgraph_uses(sg, local)
            uses += u
            outer |= {n for n in o if n not in defined}
        defined.update(node.output)
    return uses, outer


def analyse(proto: onnx.ModelProto) -> Tuple[List[Site], Dict[str, np.ndarray]]:
    """Every weight use of the main graph with its structural label, and the weight sources' data (float32)."""
    g = proto.graph
    data: Dict[str, np.ndarray] = {}
    weights: Dict[str, _Weight] = {}
    for init in g.initializer:
        if init.data_type in FLOAT_TYPES:
            data[init.name] = numpy_helper.to_array(init).astype(np.float32)
            weights[init.name] = _Weight(init.name, 0, tuple(int(d) for d in init.dims))
    inits = {i.name for i in g.initializer}
    anc: Dict[str, FrozenSet[str]] = {i.name: frozenset(["input:" + i.name]) for i in g.input if i.name not in inits}
    sites: List[Site] = []
    for node in g.node:
        if node.op_type == "Constant":
            t = next((a.t for a in node.attribute if a.name == "value" and a.type == onnx.AttributeProto.TENSOR), None)
            if t is not None and t.data_type in FLOAT_TYPES:
                data[node.output[0]] = numpy_helper.to_array(t).astype(np.float32)
                weights[node.output[0]] = _Weight(node.output[0], 0, tuple(int(d) for d in t.dims))
            continue
        if len(node.input) == 1 and node.input[0] in weights and not _subgraphs(node):
            w = _pass_through(node, weights[node.input[0]])
            if w is not None:
                weights[node.output[0]] = w
                continue
        direct = [(k, n) for k, n in enumerate(node.input) if n in weights]
        others = [n for n in node.input if n and n not in weights]
        nested: List[Tuple[int, Tuple[int, ...], str]] = []
        for sg in _subgraphs(node):
            u, o = _subgraph_uses(sg, weights)
            nested += u
            others += list(o)
        upstream = frozenset().union(*[anc.get(n, frozenset()) for n in others]) if others else frozenset()
        key = tuple(sorted(upstream))
        labels = []
        for k, n in direct:
            p, d = _applied(node, k, weights[n])
            k_key = key
            if node.op_type == "Gemm" and k == 2:
                # Gemm's C is added to the product A·B, as if A·B were computed upstream of an Add
                # (which is how another exporter may write it): the product's weights count as upstream.
                k_key = tuple(sorted(upstream | frozenset(labels)))
            lab = _label("direct", d, k_key)
            sites.append(Site(weights[n].source, p, lab))
            labels.append(lab)
        for p, d, src in nested:
            lab = _label("subgraph", d, key)
            sites.append(Site(src, p, lab))
            labels.append(lab)
        out_anc = upstream | frozenset(labels)
        for o in node.output:
            anc[o] = out_anc
    return sites, data


def _probe_model(cfg: MMRecConfig, seed: int = 12345) -> MMRec:
    """An MMRec whose every parameter has distinct random values (no two tensors equal, none symmetric)."""
    model = MMRec(cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return model


def _match(arr: np.ndarray, params: Dict[str, np.ndarray]) -> Optional[Tuple[str, int]]:
    for name, v in params.items():
        if v.size != arr.size:
            continue
        if v.shape == arr.shape and np.array_equal(v, arr):
            return name, 0
        if v.ndim == 2 and v.shape[::-1] == arr.shape and np.array_equal(v.T, arr):
            return name, 1
    return None


def label_table(cfg: MMRecConfig) -> Tuple[Dict[str, Tuple[str, int]], set]:
    """label → (parameter name, flip) from a probe export, and the labels of non-parameter
    constants. flip: the parameter is the applied matrix transposed `flip` times."""
    from .export import export_onnx, round_to_fp16  # export imports nothing from here; avoids a cycle at import

    probe = _probe_model(cfg)
    with tempfile.TemporaryDirectory(prefix="mmrec-probe-") as d:
        path = os.path.join(d, "probe.onnx")
        export_onnx(probe, path)
        proto = onnx.load(path)
    rounded = round_to_fp16(probe)
    params = {n: p.detach().numpy() for n, p in rounded.named_parameters()}
    sites, data = analyse(proto)
    matched: Dict[str, Optional[Tuple[str, int]]] = {src: _match(arr, params) for src, arr in data.items()}
    table: Dict[str, Tuple[str, int]] = {}
    constants = set()
    covered = set()
    for s in sites:
        m = matched[s.source]
        if m is None:
            constants.add(s.label)
            continue
        entry = (m[0], m[1] ^ s.parity)
        if table.setdefault(s.label, entry) != entry:
            raise WeightRecoveryError(f"the exporter's graph is ambiguous: one structural label for {table[s.label][0]} and {entry[0]}")
        covered.add(m[0])
    if constants & set(table):
        raise WeightRecoveryError("the exporter's graph is ambiguous: a constant and a parameter share a structural label")
    missing = set(params) - covered
    if missing:
        raise WeightRecoveryError(f"the probe export has no weight for {sorted(missing)}")
    return table, constants


def recover(onnx_path: str, cfg: MMRecConfig) -> MMRec:
    """An MMRec (float32) whose parameters are exactly the weights stored in `onnx_path`."""
    table, constants = label_table(cfg)
    try:
        proto = onnx.load(onnx_path)
    except Exception as e:  # onnx raises DecodeError and friends
        raise WeightRecoveryError(f"{onnx_path}: not a readable ONNX model ({e})") from e
    sites, data = analyse(proto)
    model = MMRec(cfg)
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    got: Dict[str, np.ndarray] = {}
    for s in sites:
        if s.label in table:
            name, flip = table[s.label]
            arr = data[s.source]
            if flip ^ s.parity:
                arr = arr.T
            if arr.shape != shapes[name]:
                raise WeightRecoveryError(f"{onnx_path}: weight {s.source} has shape {arr.shape}, {name} needs {shapes[name]}")
            if name in got and not np.array_equal(got[name], arr):
                raise WeightRecoveryError(f"{onnx_path}: two different weights claim to be {name}")
            got[name] = arr
        elif s.label not in constants:
            raise WeightRecoveryError(
                f"{onnx_path}: weight {s.source} {tuple(data[s.source].shape)} is not where this kit's exporter puts any parameter "
                f"(is the file an MM-Rec export matching config.json's model section?)"
            )
    missing = sorted(set(shapes) - set(got))
    if missing:
        raise WeightRecoveryError(f"{onnx_path}: no weight found for {', '.join(missing)} (does config.json's model section match the graph?)")
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(torch.from_numpy(np.ascontiguousarray(got[n])))
    return model
