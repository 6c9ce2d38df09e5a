"""Trainer smoke tests on a toy set (the real model is never trained in tests)."""
import json
import os
import random

import pytest
import torch

from conftest import prepare_data
from mmrec import corpus, train
from mmrec.export import load_checkpoint_model
from mmrec.model import load_checkpoint


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy")
    r = random.Random(7)
    with open(d / "toy.jsonl", "w") as f:
        for _ in range(48):
            rec, _ = corpus.train_conversation(r)
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    proc = prepare_data(str(d / "toy.jsonl"), str(d / "toy.mmrecds"))
    assert proc.returncode == 0, proc.stderr
    return str(d / "toy.mmrecds")


def _args(data, out, steps, *extra):
    return ["--data", data, "--out", out, "--preset", "test", "--steps", str(steps), "--batch-size", "8", "--warmup", "5",
            "--lr", "1e-2", "--log-every", "5", "--ckpt-every", "1000", "--max-len", "256", *extra]


def _losses(out):
    return [json.loads(l)["loss"] for l in open(os.path.join(out, "train-log.jsonl"))]


def test_training_reduces_loss(toy, tmp_path):
    out = str(tmp_path / "run")
    train.main(_args(toy, out, 40))
    losses = _losses(out)
    assert len(losses) == 8
    assert losses[-1] < losses[0] - 1.0, losses  # nats; ~6.4 → ~4.7 on this toy set
    summary = json.load(open(os.path.join(out, "train-summary.json")))
    assert summary["steps"] == 40 and summary["tok_per_s"] > 0
    model = load_checkpoint_model(os.path.join(out, "final.pt"))
    # Tokens that never occur in the data were given the large negative output bias.
    assert float(model.out_bias[50000]) == train.UNSEEN_BIAS


def test_resume_is_identical_to_an_uninterrupted_run(toy, tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    train.main(_args(toy, a, 12))
    train.main(_args(toy, b, 12, "--stop-after", "5"))
    assert not os.path.exists(os.path.join(b, "final.pt"))
    assert load_checkpoint(os.path.join(b, "ckpt.pt"))["step"] == 5
    train.main(_args(toy, b, 12, "--resume"))
    sa = load_checkpoint(os.path.join(a, "final.pt"))
    sb = load_checkpoint(os.path.join(b, "final.pt"))
    for k, v in sa["model"].items():
        assert torch.equal(v, sb["model"][k]), k
    assert sa["optimizer"]["state"].keys() == sb["optimizer"]["state"].keys()
    for k, st in sa["optimizer"]["state"].items():
        assert torch.equal(st["exp_avg"], sb["optimizer"]["state"][k]["exp_avg"])


def test_different_seed_differs(toy, tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    train.main(_args(toy, a, 3))
    train.main(_args(toy, b, 3, "--seed", "1"))
    wa = load_checkpoint(os.path.join(a, "final.pt"))["model"]["blocks.0.w_z.weight"]
    wb = load_checkpoint(os.path.join(b, "final.pt"))["model"]["blocks.0.w_z.weight"]
    assert not torch.equal(wa, wb)


def test_device_cuda_without_cuda_is_an_error_not_a_cpu_run(toy, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available to this PyTorch, so the missing-CUDA error cannot be shown here")
    out = str(tmp_path / "run")
    with pytest.raises(SystemExit, match="--device cuda: CUDA is not available"):
        train.main(_args(toy, out, 2, "--device", "cuda"))
    assert not os.path.exists(os.path.join(out, "train-log.jsonl")), "nothing was trained"


def test_explicit_cpu_device_trains_like_the_default(toy, tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    train.main(_args(toy, a, 6))
    train.main(_args(toy, b, 6, "--device", "cpu"))
    sa, sb = load_checkpoint(os.path.join(a, "final.pt")), load_checkpoint(os.path.join(b, "final.pt"))
    for k, v in sa["model"].items():
        assert torch.equal(v, sb["model"][k]), k
