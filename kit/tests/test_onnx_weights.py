"""Recovering a model's parameters from its model.onnx (mmrec/onnx_weights.py, mmrec/model_dir.py)."""
import json
import os
import random

import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper

from conftest import REPO, rel_err, run_onnx
from mmrec.export import export_dir, round_to_fp16
from mmrec.model import MMRec, get_config
from mmrec.model_dir import ModelDirError, load_model_dir
from mmrec.onnx_weights import WeightRecoveryError, recover

TINY = os.path.join(REPO, "models", "mm-rec-tiny")


def _trained_looking(seed=3):
    torch.manual_seed(seed)
    m = MMRec(get_config("test"))
    m.set_unseen_bias(torch.arange(0, 60000), -20.0)
    return m


def _assert_same_params(a: MMRec, b: MMRec):
    for (n, p), (n2, q) in zip(a.named_parameters(), b.named_parameters()):
        assert n == n2
        assert torch.equal(p, q), n


def test_recovered_parameters_equal_the_exported_ones(tmp_path):
    model = _trained_looking()
    export_dir(model, str(tmp_path / "m"), "m", trained=True)
    got = load_model_dir(str(tmp_path / "m")).model
    _assert_same_params(got, round_to_fp16(model))  # the file stores fp16: exactly the rounded weights


def test_shared_initializers_are_recovered(tmp_path):
    # A random model's norms are all ones: the exporter keeps one initializer and Identity copies of it.
    torch.manual_seed(4)
    model = MMRec(get_config("test"))
    export_dir(model, str(tmp_path / "m"), "m", trained=False)
    graph = onnx.load(str(tmp_path / "m" / "model.onnx")).graph
    assert any(n.op_type == "Identity" and n.output[0].endswith("norm2.weight") for n in graph.node), "the case under test: deduplicated norms"
    _assert_same_params(load_model_dir(str(tmp_path / "m")).model, round_to_fp16(model))


def _as_another_exporter(src: str, dst: str):
    """The same function as another PyTorch might write it: initializers renamed and reordered,
    a folded transpose left as a Transpose node, the head as MatMul of a transposed embedding."""
    proto = onnx.load(src)
    g = proto.graph
    rng = random.Random(0)
    inits = list(g.initializer)
    rename = {i.name: f"w{k}" for k, i in enumerate(inits)}
    for node in g.node:
        node.input[:] = [rename.get(x, x) for x in node.input]
    for i in inits:
        i.name = rename[i.name]
    # Un-fold one transposed [D, D] MatMul weight: store it as the parameter's layout, with a Transpose.
    target = next(i for i in inits if len(i.dims) == 2 and i.dims[0] == i.dims[1])
    arr = numpy_helper.to_array(target)
    target.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(arr.T), target.name))
    cast = next(n for n in g.node if n.input and n.input[0] == target.name)
    old_out = cast.output[0]
    cast.output[0] = old_out + "_t"
    nodes = list(g.node)
    pos = nodes.index(cast) + 1
    nodes.insert(pos, helper.make_node("Transpose", [old_out + "_t"], [old_out], perm=[1, 0]))
    # Head: Gemm(x, E, b, transB=1) → MatMul(x, Transpose(E)) + b.
    gemm = next(n for n in nodes if n.op_type == "Gemm")
    x, e, b = gemm.input
    gi = nodes.index(gemm)
    nodes[gi : gi + 1] = [
        helper.make_node("Transpose", [e], [e + "_T"], perm=[1, 0]),
        helper.make_node("MatMul", [x, e + "_T"], [gemm.output[0] + "_mm"]),
        helper.make_node("Add", [gemm.output[0] + "_mm", b], [gemm.output[0]]),
    ]
    del g.node[:]
    g.node.extend(nodes)
    rng.shuffle(inits)
    del g.initializer[:]
    g.initializer.extend(inits)
    onnx.checker.check_model(proto)
    onnx.save(proto, dst)


def test_recovery_does_not_depend_on_names_order_or_transpose_folding(tmp_path):
    model = _trained_looking(5)
    export_dir(model, str(tmp_path / "m"), "m", trained=True)
    _as_another_exporter(str(tmp_path / "m" / "model.onnx"), str(tmp_path / "other.onnx"))
    ids = np.random.default_rng(0).integers(0, 60000, size=(2, 7))
    os.makedirs(tmp_path / "o")
    os.replace(tmp_path / "other.onnx", tmp_path / "o" / "model.onnx")
    (a, _), = run_onnx(str(tmp_path / "m"), ids, [[7]], str(tmp_path / "ra"))
    (b, _), = run_onnx(str(tmp_path / "o"), ids, [[7]], str(tmp_path / "rb"))
    assert rel_err(b, a) < 1e-5, "the rewritten graph computes the same function"
    got = recover(str(tmp_path / "o" / "model.onnx"), model.cfg)
    _assert_same_params(got, round_to_fp16(model))


def test_a_config_that_does_not_match_the_graph_is_an_error(tmp_path):
    model = _trained_looking()
    out = tmp_path / "m"
    export_dir(model, str(out), "m", trained=True)
    cfg = json.load(open(out / "config.json"))
    cfg["model"]["d_ffn"] = 48
    json.dump(cfg, open(out / "config.json", "w"))
    with pytest.raises(ModelDirError):
        load_model_dir(str(out))
    with pytest.raises(WeightRecoveryError):
        recover(str(out / "model.onnx"), get_config("test", d_ffn=48))


def test_mm_rec_tiny_reexported_gives_the_original_logits(tmp_path):
    served = load_model_dir(TINY)
    assert served.initial_state is None and served.graph_dir == TINY
    assert int((served.model.out_bias == -20.0).sum()) > 90000, "the unseen-token biases came back"
    out = str(tmp_path / "again")
    export_dir(served.model, out, "again", trained=True)
    ids = np.array([[100262, 198, 3923, 374, 279, 6864, 315, 9822, 30, 198, 100257, 198, 100263, 198],
                    [100262, 198, 13347, 0, 198, 100257, 198, 100263, 198, 9906, 0, 2650, 649, 358]])
    (orig, s_orig), = run_onnx(TINY, ids, [[14]], str(tmp_path / "a"))
    (again, s_again), = run_onnx(out, ids, [[14]], str(tmp_path / "b"))
    assert rel_err(again, orig) < 1e-5
    for x, y in zip(s_again, s_orig):
        assert rel_err(x, y) < 1e-5
    # And the recovered PyTorch model itself computes what the original graph does.
    with torch.no_grad():
        logits, _ = served.model(torch.from_numpy(ids), served.model.zero_state(2))
    assert rel_err(logits.numpy(), orig) < 1e-4
    # The re-exported file stores exactly the same weights.
    _assert_same_params(load_model_dir(out).model, served.model)
