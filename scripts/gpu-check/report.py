"""The GPU check's report: markdown on stdout, everything as JSON in argv[2].

    python3 scripts/gpu-check/report.py <results-dir> <out.json>

Reads what run.sh left in <results-dir>: per stage NAME.status, NAME.seconds and
NAME.out (one JSON object from measure.ts, or the export's and env's text), and
train-DEVICE.jsonl (the trainer's log). Needs nothing beyond the standard library.
"""
import json
import os
import statistics
import sys

res, out_json = sys.argv[1], sys.argv[2]


def read(name, default=None):
    try:
        with open(os.path.join(res, name)) as f:
            return f.read().strip()
    except OSError:
        return default


def measured(stage):
    """The stage's last JSON line (a stage cut short may have printed partial results), or None."""
    for line in reversed((read(f"{stage}.out", "") or "").splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


def partial(stage):
    """' (partial: <outcome>)' for a stage that printed results but did not end well."""
    status = read(f"{stage}.status")
    return "" if status == "ok" else f" ({status})"


def fmt(x, digits=1):
    if x is None:
        return "—"
    if isinstance(x, float) and (abs(x) < 1e-2 or abs(x) >= 1e5) and x != 0:
        return f"{x:.2e}"
    return f"{x:,.{digits}f}"


def ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "—"


device = read("device", "webgpu")
train_device = read("train_device", "cuda")
dry = device == "cpu"
stages = (read("stages", "") or "").split()  # in the order they ran
report = {"device": device, "train_device": train_device, "stages": {}, "env": read("env.out", ""), "vulkan": {"loader": read("vulkan_loader"), "drivers": read("vulkan_drivers")}}
lines = []
w = lines.append

w(f"# GPU check: {device} against the CPU provider, kit training on {train_device}")
w("")
if dry:
    w("**Dry run: the CPU stands in for WebGPU and CUDA; the figures below say nothing about a GPU.**")
    w("")
w("```")
w(report["env"] or "(no environment stage)")
w(f"vulkan loader: {report['vulkan']['loader']}; drivers: {report['vulkan']['drivers']}")
w("```")
w("")
w(f"| stage | outcome | seconds |")
w("| --- | --- | ---: |")
for s in stages:
    report["stages"][s] = {"status": read(f"{s}.status"), "seconds": read(f"{s}.seconds"), "result": measured(s)}
    w(f"| {s} | {read(f'{s}.status')} | {read(f'{s}.seconds', '—')} |")
w(f"| total | deadline {read('deadline')} s | {read('total_seconds', '—')} |")
w("")

w(f"## Correctness: {device} vs CPU (prefill 2 × 64 tokens, then 8 decode steps)")
w("")
w("Tolerance: |Δ| ≤ 1e-3 · max(1, |cpu|) for every logit and state value (max rel below).")
w("")
w("| model | provider | logits max abs | logits max rel | top-1 same | states max abs | states max rel | CPU arrays | within tolerance |")
w("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
for model in ("tiny", "100m"):
    r = measured(f"parity-{model}")
    if not r:
        w(f"| {model} | — | {read(f'parity-{model}.status', 'not run')} | | | | | | |")
        continue
    lg, st = r["logits"], r["states"]
    top1 = f"{lg['top1Agreement'] * 100:.1f} %" if lg["top1Agreement"] is not None else "—"
    w(f"| {model} | {r['device']} | {fmt(lg['maxAbs'])} | {fmt(lg['maxRel'])} | {top1} | {fmt(st['maxAbs'])} | {fmt(st['maxRel'])} | {'yes' if r['arraysOnCpu'] else 'NO'} | {'yes' if r['ok'] else '**NO**'} |")
w("")

w("## Inference through OnnxModel (tokens/s; decode steps carry the state and bring the logits back to the CPU)")
w("")
w("| model | provider | prefill (512-token prompt) | decode batch 1 | decode batch 16 | decode batch 64 |")
w("| --- | --- | ---: | ---: | ---: | ---: |")
for model in ("tiny", "100m"):
    rows = {}
    for dev in dict.fromkeys([device, "cpu"]):
        r = measured(f"bench-{model}-{dev}")
        rows[dev] = r
        if not r:
            if read(f"bench-{model}-{dev}.status"):
                w(f"| {model} | {dev} | {read(f'bench-{model}-{dev}.status')} | | | |")
            continue
        d = r["decode"]
        w(f"| {model} | {r['device']}{partial(f'bench-{model}-{dev}')} | {fmt(r['prefill']['tokensPerSecond'])} | "
          + " | ".join(fmt(d.get(f"batch{b}", {}).get("tokensPerSecond")) for b in (1, 16, 64)) + " |")
    g, c = rows.get(device), rows.get("cpu")
    if g and c and device != "cpu":
        w(f"| {model} | {device} ÷ cpu | {ratio(g['prefill']['tokensPerSecond'], c['prefill']['tokensPerSecond'])} | "
          + " | ".join(ratio(g["decode"].get(f"batch{b}", {}).get("tokensPerSecond"), c["decode"].get(f"batch{b}", {}).get("tokensPerSecond")) for b in (1, 16, 64)) + " |")
w("")

w("## The server over HTTP: 16 concurrent streamed chat completions of 64 tokens")
w("")
w("| model | --device | runs on | completion tokens/s (all streams) | per stream | median time to first token (ms) |")
w("| --- | --- | --- | ---: | ---: | ---: |")
for dev in dict.fromkeys([device, "cpu"]):
    r = measured(f"serve-{dev}")
    if r:
        runs_on = r["providerLine"].split(" runs on ")[-1].split(" ")[0] if " runs on " in r["providerLine"] else "?"
        w(f"| {os.path.basename(r['model'])} | {dev} | {runs_on} | {fmt(r['tokensPerSecond'])} | {fmt(r['perStreamTokensPerSecond'])} | {fmt(r['medianTimeToFirstTokenMs'], 0)} |")
    elif read(f"serve-{dev}.status"):
        w(f"| — | {dev} | {read(f'serve-{dev}.status')} | | | |")
w("")

w("## Kit training (tiny preset, batch 64, conversations cut at 512 tokens)")
w("")
w("| device | steps logged | tokens/s (median of the 10-step windows after the first) | outcome |")
w("| --- | ---: | ---: | --- |")
for dev in dict.fromkeys([train_device, "cpu"]):
    raw = read(f"train-{dev}.jsonl")
    if raw is None:
        if read(f"train-{dev}.status"):
            w(f"| {dev} | 0 | — | {read(f'train-{dev}.status')} |")
        continue
    recs = [json.loads(l) for l in raw.splitlines() if l.strip()]
    rates = [r["tok_per_s"] for r in recs[1:]] or [r["tok_per_s"] for r in recs]
    tps = statistics.median(rates) if rates else None
    report["stages"].setdefault(f"train-{dev}", {})["tokens_per_second"] = tps
    steps = recs[-1]["step"] if recs else 0
    w(f"| {dev} | {steps} | {fmt(tps, 0)} | {read(f'train-{dev}.status')} |")
w("")

with open(out_json, "w") as f:
    json.dump(report, f, indent=2)
print("\n".join(lines))
