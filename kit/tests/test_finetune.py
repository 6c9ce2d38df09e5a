"""mmrec.finetune as the server runs it: a child process, JSON lines on stdout, SIGTERM to pause,
--resume, state tuning and its directory format, and errors."""
import json
import os
import random
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import KIT, prepare_data, rel_err, run_onnx
from mmrec import corpus, finetune
from mmrec.data import epoch_schedule, load_dataset, loss_tokens, make_batch
from mmrec.export import export_dir
from mmrec.model import MMRec, get_config
from mmrec.model_dir import load_model_dir, sha256_file

FIELDS = {
    "started": {"method", "epochs", "steps_per_epoch", "total_steps", "examples", "trained_tokens_per_epoch", "parameters",
                "trainable_parameters", "batch_size", "learning_rate", "resumed_from_step"},
    "step": {"step", "epoch", "train_loss", "train_mean_token_accuracy", "trained_tokens", "elapsed_s", "tokens_per_s"},
    "checkpoint": {"step", "epoch", "model_dir", "train_loss", "train_mean_token_accuracy"},
    "paused": {"step"},
    "finished": {"step", "model_dir", "trained_tokens", "elapsed_s", "tokens_per_s"},
}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """24 corpus conversations, prepared by the real pipeline; a base model that has 'seen'
    only some of their tokens (the others keep the unseen bias, as in a trained model)."""
    d = tmp_path_factory.mktemp("ft")
    r = random.Random(3)
    with open(d / "toy.jsonl", "w") as f:
        for _ in range(24):
            f.write(json.dumps(corpus.train_conversation(r)[0], ensure_ascii=False) + "\n")
    proc = prepare_data(str(d / "toy.jsonl"), str(d / "toy.mmrecds"))
    assert proc.returncode == 0, proc.stderr
    ds = load_dataset(str(d / "toy.mmrecds"))
    vocab = ds.vocabulary()
    torch.manual_seed(0)
    model = MMRec(get_config("test"))
    model.set_unseen_bias(torch.from_numpy(vocab[: len(vocab) * 3 // 4]), -20.0)  # a quarter of the data's tokens are new
    base = str(d / "base")
    export_dir(model, base, "toy-base", trained=True)
    return {"data": str(d / "toy.mmrecds"), "base": base, "new": vocab[len(vocab) * 3 // 4 :]}


def _cmd(base, data, out, *extra):
    return [sys.executable, "-m", "mmrec.finetune", "--base-model", base, "--train", data, "--out", out, "--epochs", "2",
            "--batch-size", "8", "--threads", "1", "--max-len", "256", *extra]


def _run(*args, check=True):
    proc = subprocess.run(_cmd(*args), cwd=KIT, capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc, [json.loads(line) for line in proc.stdout.splitlines()]


def _check_protocol(events, total, per_epoch, start=0):
    assert [e["event"] for e in events] == (["started"] + sum(
        [["step", "checkpoint"] if n % per_epoch == 0 else ["step"] for n in range(start + 1, total + 1)], []) + ["finished"])
    for e in events:
        assert FIELDS[e["event"]] <= set(e), e
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == list(range(start + 1, total + 1))
    assert all(e["epoch"] == (e["step"] - 1) // per_epoch + 1 for e in steps)
    assert all(0 <= e["train_mean_token_accuracy"] <= 1 and e["train_loss"] > 0 for e in steps)
    tt = [e["trained_tokens"] for e in steps]
    assert tt == sorted(tt) and len(set(tt)) == len(tt), "cumulative loss tokens"


def test_protocol_and_artifacts(toy, tmp_path):
    out = str(tmp_path / "run")
    proc, ev = _run(toy["base"], toy["data"], out)
    started = ev[0]
    assert started["examples"] == 24 and started["batch_size"] == 8 and started["steps_per_epoch"] == 3 and started["total_steps"] == 6
    assert started["resumed_from_step"] == 0 and started["method"] == "full"
    assert started["learning_rate"] == finetune.BASE_LR["full"]
    assert started["trainable_parameters"] == started["parameters"] == sum(p.numel() for p in MMRec(get_config("test")).parameters())
    ds = load_dataset(toy["data"])
    assert started["trained_tokens_per_epoch"] == int(loss_tokens(ds, 256).sum())
    _check_protocol(ev, 6, 3)
    fin = ev[-1]
    assert fin["trained_tokens"] == 2 * started["trained_tokens_per_epoch"]
    assert fin["model_dir"] == os.path.join(out, "final")
    cks = [e for e in ev if e["event"] == "checkpoint"]
    assert [c["model_dir"] for c in cks] == [os.path.join(out, "checkpoints", "step-3"), os.path.join(out, "checkpoints", "step-6")]
    for d in [c["model_dir"] for c in cks] + [fin["model_dir"]]:
        assert sorted(os.listdir(d)) == ["README.md", "config.json", "model.onnx"]
        cfg = json.load(open(os.path.join(d, "config.json")))
        assert cfg["trained"] is True and "initial_state" not in cfg and "base_model" not in cfg
        assert cfg["fine_tune"]["training_file"]["sha256"] == sha256_file(toy["data"])
        assert "sha256" in open(os.path.join(d, "README.md")).read()
    assert json.load(open(os.path.join(out, "final", "config.json")))["model_id"] == "ft:toy-base"
    assert json.load(open(os.path.join(cks[0]["model_dir"], "config.json")))["model_id"] == "ft:toy-base:ckpt-step-3"
    assert not os.path.exists(os.path.join(out, "resume.pt")), "a finished run leaves no resume state"
    assert not [n for n in os.listdir(out) if n.startswith(".")], "no temporary directories left"
    assert proc.stderr.strip().splitlines()[-1].startswith("fine-tuning ")  # free-form progress, no error line

    # The fine-tuned directory is an ordinary export: it serves (onnxruntime), loads, and fine-tunes again.
    served = load_model_dir(os.path.join(out, "final"))
    new = torch.from_numpy(toy["new"])
    assert (served.model.out_bias[new] > -20.0).all(), "tokens new to the base were made learnable"
    ids = np.array([[100262, 198, 9906, 0, 198, 100257, 198, 100263, 198]])
    (logits, _), = run_onnx(os.path.join(out, "final"), ids, [[9]], str(tmp_path / "ort"))
    with torch.no_grad():
        ref, _ = served.model(torch.from_numpy(ids), served.model.zero_state(1))
    assert rel_err(logits, ref.numpy()) < 1e-4
    _, ev2 = _run(os.path.join(out, "final"), toy["data"], str(tmp_path / "again"), "--epochs", "1", "--model-id", "ft:again")
    assert ev2[-1]["event"] == "finished" and ev2[0]["new_tokens"] == 0
    assert json.load(open(os.path.join(str(tmp_path / "again"), "final", "config.json")))["model_id"] == "ft:again"


def test_same_seed_same_weights_other_seed_differs(toy, tmp_path):
    # A large LR, so that 3 steps leave a difference the fp16 export can show.
    _, a = _run(toy["base"], toy["data"], str(tmp_path / "a"), "--epochs", "1", "--batch-size", "4", "--learning-rate-multiplier", "30")
    _, b = _run(toy["base"], toy["data"], str(tmp_path / "b"), "--epochs", "1", "--batch-size", "4", "--learning-rate-multiplier", "30")
    _, c = _run(toy["base"], toy["data"], str(tmp_path / "c"), "--epochs", "1", "--batch-size", "4", "--learning-rate-multiplier", "30", "--seed", "1")
    loss = lambda ev: [e["train_loss"] for e in ev if e["event"] == "step"]  # noqa: E731
    assert loss(a) == loss(b) and loss(a) != loss(c)
    fa, fb, fc = (sha256_file(os.path.join(str(tmp_path / x), "final", "model.onnx")) for x in "abc")
    assert fa == fb and fa != fc


def _pause_after(cmd, step):
    """Run `cmd`, send SIGTERM once step `step` is reported; returns (returncode, events, stderr)."""
    p = subprocess.Popen(cmd, cwd=KIT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = []
    for line in p.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "step" and events[-1]["step"] == step:
            p.send_signal(signal.SIGTERM)
    err = p.stderr.read()
    return p.wait(), events, err


@pytest.mark.parametrize("method", ["full", "state"])
def test_pause_on_sigterm_then_resume_gives_the_uninterrupted_weights(toy, tmp_path, method):
    extra = ("--epochs", "3", "--method", method)
    whole = str(tmp_path / "whole")
    _, ev_whole = _run(toy["base"], toy["data"], whole, *extra)
    out = str(tmp_path / "paused")
    rc, ev, err = _pause_after(_cmd(toy["base"], toy["data"], out, *extra), 2)
    assert rc == 0, err
    assert ev[-1]["event"] == "paused" and ev[-1]["step"] >= 2
    n = ev[-1]["step"]
    assert n < 9, "the run stopped before the end"
    assert os.path.exists(os.path.join(out, "resume.pt")) and not os.path.exists(os.path.join(out, "final"))
    # A run that holds a resume state refuses to start over without --resume.
    proc, _ = _run(toy["base"], toy["data"], out, *extra, check=False)
    assert proc.returncode != 0 and proc.stderr.strip().splitlines()[-1].startswith("error: ") and "--resume" in proc.stderr
    _, ev2 = _run(toy["base"], toy["data"], out, *extra, "--resume")
    assert ev2[0]["event"] == "started" and ev2[0]["resumed_from_step"] == n
    _check_protocol(ev2, 9, 3, start=n)
    loss = lambda evs: [e["train_loss"] for e in evs if e["event"] == "step"]  # noqa: E731
    assert loss(ev[1:-1]) + loss(ev2) == loss(ev_whole), "the same batches, in the same order, from the same state"
    assert ev2[-1]["trained_tokens"] == ev_whole[-1]["trained_tokens"]
    name = "model.onnx" if method == "full" else "initial_state.bin"
    assert sha256_file(os.path.join(out, "final", name)) == sha256_file(os.path.join(whole, "final", name))
    if method == "state":  # float32 on disk: the state equals the uninterrupted one bit for bit
        assert np.array_equal(np.fromfile(os.path.join(out, "final", name), "<f4"), np.fromfile(os.path.join(whole, "final", name), "<f4"))


def test_state_tuning_trains_only_the_initial_state(toy, tmp_path):
    out = str(tmp_path / "st")
    proc, ev = _run(toy["base"], toy["data"], out, "--method", "state", "--learning-rate-multiplier", "3")
    cfg_model = MMRec(get_config("test")).cfg
    L, D = cfg_model.n_layers, cfg_model.d_model
    assert ev[0]["trainable_parameters"] == L * D and ev[0]["method"] == "state"
    assert "will not produce them" in proc.stderr, "tokens new to the base are reported as unlearnable"
    _check_protocol(ev, 6, 3)
    final = os.path.join(out, "final")
    assert sorted(os.listdir(final)) == ["README.md", "config.json", "initial_state.bin"]
    cfg = json.load(open(os.path.join(final, "config.json")))
    assert cfg["initial_state"]["file"] == "initial_state.bin" and cfg["initial_state"]["dtype"] == "float32"
    assert cfg["initial_state"]["shapes"] == [[D]] * L
    assert cfg["base_model"] == {"path": toy["base"], "model_id": "toy-base", "sha256": sha256_file(os.path.join(toy["base"], "model.onnx"))}
    assert cfg["model"]["state_shapes"] == [[D]] * L and cfg["fine_tune"]["method"] == "state"
    assert os.path.getsize(os.path.join(final, "initial_state.bin")) == 4 * L * D
    base = load_model_dir(toy["base"])
    tuned = load_model_dir(final)
    for (n, p), (_, q) in zip(base.model.named_parameters(), tuned.model.named_parameters()):
        assert torch.equal(p, q), f"{n} changed"
    assert tuned.graph_dir == toy["base"] and tuned.initial_state is not None
    assert all(h.shape == (D,) for h in tuned.initial_state) and any(h.abs().sum() > 0 for h in tuned.initial_state)
    state_file = np.fromfile(os.path.join(final, "initial_state.bin"), "<f4")
    assert np.array_equal(state_file, np.concatenate([h.numpy() for h in tuned.initial_state]))
    # The loss went down (the state does something).
    losses = [e["train_loss"] for e in ev if e["event"] == "step"]
    ck = [e["train_loss"] for e in ev if e["event"] == "checkpoint"]
    assert ck[-1] < ck[0], (ck, losses)

    # State-tune again: from the tuned state, the same base graph (no chain of directories).
    _, ev2 = _run(final, toy["data"], str(tmp_path / "st2"), "--method", "state", "--epochs", "1")
    cfg2 = json.load(open(os.path.join(str(tmp_path / "st2"), "final", "config.json")))
    assert cfg2["base_model"]["path"] == toy["base"] and cfg2["fine_tune"]["from_model"]["path"] == final
    # Fully fine-tune the state-tuned model: its own graph plus a trained initial state, no base_model.
    _, ev3 = _run(final, toy["data"], str(tmp_path / "full"), "--epochs", "1")
    assert ev3[0]["trainable_parameters"] == ev3[0]["parameters"] == sum(p.numel() for p in base.model.parameters()) + L * D
    full = os.path.join(str(tmp_path / "full"), "final")
    assert sorted(os.listdir(full)) == ["README.md", "config.json", "initial_state.bin", "model.onnx"]
    cfg3 = json.load(open(os.path.join(full, "config.json")))
    assert "base_model" not in cfg3 and cfg3["initial_state"]["shapes"] == [[D]] * L
    again = load_model_dir(full)
    assert again.graph_dir == full and again.initial_state is not None
    assert not torch.equal(again.model.blocks[0].w_z.weight, base.model.blocks[0].w_z.weight)


def test_a_changed_base_graph_is_refused(toy, tmp_path):
    out = str(tmp_path / "st")
    _run(toy["base"], toy["data"], out, "--method", "state", "--epochs", "1")
    final = os.path.join(out, "final")
    cfg = json.load(open(os.path.join(final, "config.json")))
    cfg["base_model"]["sha256"] = "0" * 64
    json.dump(cfg, open(os.path.join(final, "config.json"), "w"))
    proc, ev = _run(final, toy["data"], str(tmp_path / "x"), check=False)
    assert proc.returncode != 0 and ev == []
    assert proc.stderr.strip().splitlines()[-1].startswith("error: --base-model") and "base model changed" in proc.stderr


def _error(args, tmp_path, *extra_cmd):
    proc = subprocess.run([sys.executable, "-m", "mmrec.finetune", *args], cwd=KIT, capture_output=True, text=True)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0, proc.stderr
    assert lines and lines[-1].startswith("error: "), proc.stderr
    assert proc.stdout == "", "no protocol line before the error"
    return lines[-1]


def test_errors_end_with_one_error_line_and_a_nonzero_exit(toy, tmp_path):
    out = str(tmp_path / "o")
    base, data = toy["base"], toy["data"]
    assert "--base-model" in _error(["--base-model", str(tmp_path / "nope"), "--train", data, "--out", out], tmp_path)
    os.makedirs(tmp_path / "empty")
    assert "config.json" in _error(["--base-model", str(tmp_path / "empty"), "--train", data, "--out", out], tmp_path)
    bad = tmp_path / "bad.mmrecds"
    bad.write_bytes(b"NOTADATA" + bytes(64))
    assert "--train" in _error(["--base-model", base, "--train", str(bad), "--out", out], tmp_path)
    assert "--train" in _error(["--base-model", base, "--train", str(tmp_path / "missing.mmrecds"), "--out", out], tmp_path)
    assert "--epochs" in _error(["--base-model", base, "--train", data, "--out", out, "--epochs", "0"], tmp_path)
    assert "--learning-rate-multiplier" in _error(["--base-model", base, "--train", data, "--out", out, "--learning-rate-multiplier", "-1"], tmp_path)
    assert "--method" in _error(["--base-model", base, "--train", data, "--out", out, "--method", "lora"], tmp_path)
    assert "--resume" in _error(["--base-model", base, "--train", data, "--out", out, "--resume"], tmp_path)
    if not torch.cuda.is_available():
        assert "CUDA is not available" in _error(["--base-model", base, "--train", data, "--out", out, "--device", "cuda"], tmp_path)
    # A corrupt model.onnx.
    broken = tmp_path / "broken"
    os.makedirs(broken)
    open(broken / "config.json", "w").write(open(os.path.join(base, "config.json")).read())
    (broken / "model.onnx").write_bytes(b"\x00garbage")
    assert "--base-model" in _error(["--base-model", str(broken), "--train", data, "--out", out], tmp_path)


def test_epoch_schedule_uses_every_example_once_per_epoch():
    lengths = np.random.default_rng(0).integers(5, 50, size=29)
    sched = epoch_schedule(lengths, 4, 3, seed=7)
    assert len(sched) == 3 * 8
    for e in range(3):
        epoch = np.concatenate(sched[e * 8 : (e + 1) * 8])
        assert sorted(epoch.tolist()) == list(range(29))
    assert sorted(len(b) for b in sched[:8]) == [1] + [4] * 7
    assert [b.tolist() for b in sched] == [b.tolist() for b in epoch_schedule(lengths, 4, 3, seed=7)]
    assert [b.tolist() for b in sched] != [b.tolist() for b in epoch_schedule(lengths, 4, 3, seed=8)]
    sub = epoch_schedule(lengths, 4, 1, seed=7, examples=[1, 3, 5])
    assert sorted(np.concatenate(sub).tolist()) == [1, 3, 5]


def test_loss_tokens_match_the_batches(toy):
    ds = load_dataset(toy["data"])
    for max_len in (20, 256):
        lt = loss_tokens(ds, max_len)
        for i in range(len(ds)):
            _, labels, _ = make_batch(ds, [i], 100257, max_len)
            assert int((labels != -100).sum()) == lt[i]
