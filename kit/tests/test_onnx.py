"""The exported graph: same function as PyTorch (onnxruntime-node, CPU EP), the
state contract, and the model-directory contract (config.json, fp16 weights, Loop)."""
import json
import os

import numpy as np
import onnx
import pytest
import torch

from conftest import rel_err, run_onnx
from mmrec.export import export_dir, round_to_fp16
from mmrec.model import MMRec, get_config

REQUIRED_KEYS = {
    "model_id", "architecture", "format_version", "vocab_size", "context_length", "tokenizer", "chat_template",
    "eos_token_ids", "default_sampling", "model", "weights_dtype", "trained",
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(3)
    model = MMRec(get_config("test"))
    # Trained-looking output bias (never-seen tokens at -20) so that path is covered too.
    model.set_unseen_bias(torch.arange(0, 60000), -20.0)
    out = str(tmp_path_factory.mktemp("export") / "mm-rec-test")
    export_dir(model, out, "mm-rec-test", trained=False)
    return model, out


def _torch_run(model, ids, sizes):
    m = round_to_fp16(model)
    state = m.zero_state(ids.shape[0])
    outs, pos = [], 0
    with torch.no_grad():
        for n in sizes:
            logits, state = m(torch.from_numpy(ids[:, pos : pos + n]), state)
            outs.append(logits)
            pos += n
    return torch.cat(outs, 1).numpy(), [s.numpy() for s in state]


def test_onnx_matches_pytorch_and_state_contract(exported, tmp_path):
    model, out = exported
    rng = np.random.default_rng(0)
    ids = rng.integers(0, model.cfg.vocab_size, size=(3, 17))
    ids[1, :4] = [100257, 100262, 100263, 100266]  # special tokens too
    chunkings = [[17], [1] * 17, [4, 1, 7, 5]]
    onnx_runs = run_onnx(out, ids, chunkings, str(tmp_path / "ort"))
    ref_logits, ref_state = _torch_run(model, ids, [17])
    assert onnx_runs[0][0].shape == (3, 17, model.cfg.vocab_size)
    for sizes, (logits, state) in zip(chunkings, onnx_runs):
        assert rel_err(logits, ref_logits) <= 1e-4, f"chunking {sizes}: logits differ from PyTorch"
        for a, b in zip(state, ref_state):
            assert rel_err(a, b) <= 1e-4, f"chunking {sizes}: final state differs"


def test_onnx_batch_rows_independent(exported, tmp_path):
    model, out = exported
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 50000, size=(4, 9))
    other = ids.copy()
    other[[0, 2, 3]] = rng.integers(0, 50000, size=(3, 9))
    (a, sa), = run_onnx(out, ids, [[9]], str(tmp_path / "a"))
    (b, sb), = run_onnx(out, other, [[9]], str(tmp_path / "b"))
    (c, sc), = run_onnx(out, ids[1:2], [[9]], str(tmp_path / "c"))
    assert np.array_equal(a[1], b[1]) or rel_err(a[1], b[1]) < 1e-6
    assert rel_err(c[0], a[1]) < 1e-5
    for x, y in zip(sa, sc):
        assert rel_err(y[0], x[1]) < 1e-5


def test_never_seen_tokens_are_far_below(exported, tmp_path):
    model, out = exported
    ids = np.array([[100262, 5, 6, 7]])
    (logits, _), = run_onnx(out, ids, [[4]], str(tmp_path / "u"))
    assert logits[0, :, 60000:].max() < logits[0, :, :60000].max() - 10


def test_model_directory_contract(exported):
    model, out = exported
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert REQUIRED_KEYS <= set(cfg)
    assert cfg["architecture"] == "mm-rec" and cfg["format_version"] == 1 and cfg["vocab_size"] == 100277
    assert cfg["tokenizer"] == {
        "encoding": "cl100k_base",
        "special_tokens": {
            "<|endoftext|>": 100257, "<|system|>": 100261, "<|user|>": 100262, "<|assistant|>": 100263,
            "<|tool|>": 100264, "<|tools|>": 100265, "<|tool_call|>": 100266,
        },
    }
    assert cfg["eos_token_ids"] == [100257] and cfg["chat_template"] == "mm-rec-chat-v1"
    assert cfg["default_sampling"] == {"temperature": 0.7, "top_p": 0.9}
    assert cfg["weights_dtype"] == "float16" and cfg["trained"] is False
    assert cfg["model"]["d_model"] == model.cfg.d_model
    assert os.path.getsize(os.path.join(out, "README.md")) > 0

    proto = onnx.load(os.path.join(out, "model.onnx"))
    g = proto.graph
    assert proto.opset_import[0].version == 17
    assert [i.name for i in g.input] == ["input_ids"] + [f"state_in.{i}" for i in range(model.cfg.n_layers)]
    assert [o.name for o in g.output] == ["logits"] + [f"state_out.{i}" for i in range(model.cfg.n_layers)]
    assert g.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    dims = [d.dim_param for d in g.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "seq"], "batch and sequence axes must be dynamic"
    assert g.input[1].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert sum(n.op_type == "Loop" for n in g.node) == model.cfg.n_layers
    big = [i for i in g.initializer if np.prod(i.dims) >= 1000]
    assert big and all(i.data_type == onnx.TensorProto.FLOAT16 for i in big), "weights must be stored as fp16"
    # No duplicated (e.g. transposed) copy of the embedding table.
    assert sum(np.prod(i.dims) == model.embed.numel() for i in g.initializer) == 1


def test_export_cli_random(tmp_path):
    import subprocess
    import sys

    from conftest import KIT

    out = tmp_path / "cli-export"
    proc = subprocess.run(
        [sys.executable, "-m", "mmrec.export", "--random", "--preset", "test", "--d-model", "16", "--n-layers", "1", "--embed-rank", "4", "--out", str(out)],
        cwd=KIT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    cfg = json.load(open(out / "config.json"))
    assert cfg["model_id"] == "cli-export" and cfg["trained"] is False
    assert cfg["model"]["d_model"] == 16 and cfg["model"]["n_layers"] == 1 and cfg["model"]["embed_rank"] == 4
    proto = onnx.load(str(out / "model.onnx"))
    assert [i.name for i in proto.graph.input] == ["input_ids", "state_in.0"]


def test_export_without_the_scan_rewrite_warns_and_stays_correct(tmp_path, monkeypatch, capsys):
    """An exporter whose Loops the rewrite does not recognise (another PyTorch) still gives a working model."""
    import mmrec.export as export

    monkeypatch.setattr(export, "loop_sequences_to_scan_outputs", lambda proto: 0)
    torch.manual_seed(4)
    model = MMRec(get_config("test"))
    out = str(tmp_path / "plain")
    export_dir(model, out, "mm-rec-plain", trained=False)
    assert "keep the exporter's tensor sequences" in capsys.readouterr().err
    graph = onnx.load(os.path.join(out, "model.onnx")).graph
    assert sum(n.op_type == "Loop" for n in graph.node) == model.cfg.n_layers
    assert any(n.op_type == "ConcatFromSequence" for n in graph.node), "the sequences are still there"
    ids = np.random.default_rng(1).integers(0, model.cfg.vocab_size, size=(2, 9))
    (logits, _), = run_onnx(out, ids, [[9]], str(tmp_path / "ort"))
    ref, _ = _torch_run(model, ids, [9])
    assert rel_err(logits, ref) < 1e-4
