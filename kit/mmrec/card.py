"""Write the model card (README.md) of a trained model directory from what the
retrain run measured, so the card always describes the committed weights.

    /usr/bin/python3 -m mmrec.card --model-dir ../models/mm-rec-tiny --run ../runs/tiny
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Optional

from . import corpus
from .data import load_dataset

FAMILY_ORDER = ["capital", "arithmetic", "name_recall", "tool_call", "tool_answer", "greeting"]


def _load(path: str) -> Optional[dict]:
    return json.load(open(path)) if os.path.exists(path) else None


def _list(xs) -> str:
    return ", ".join(f"`{x}`" for x in xs)


def corpus_shape(train_jsonl: str) -> dict:
    """Measured shape of the training conversations, for the card."""
    n = sys_n = tools_n = 0
    exchanges = []
    for line in open(train_jsonl):
        rec = json.loads(line)
        n += 1
        sys_n += rec["messages"][0]["role"] == "system"
        tools_n += "tools" in rec
        exchanges.append(sum(m["role"] == "user" for m in rec["messages"]))
    return {"system": sys_n / n, "tools": tools_n / n, "ex_min": min(exchanges), "ex_max": max(exchanges), "ex_mean": sum(exchanges) / n}


def render(model_dir: str, run: str) -> str:
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    m = cfg["model"]
    size = os.path.getsize(os.path.join(model_dir, "model.onnx"))
    ds = load_dataset(os.path.join(run, "data", "train.mmrecds"))
    summary = _load(os.path.join(run, "train-summary.json")) or {}
    args = json.load(open(os.path.join(run, "train-args.json")))
    corpus_stats = _load(os.path.join(run, "data", "corpus-stats.json")) or {}
    ev = _load(os.path.join(run, "eval.json"))
    timings = _load(os.path.join(run, "timings.json")) or {}
    D, L = m["d_model"], m["n_layers"]
    shape = corpus_shape(os.path.join(run, "data", "train.jsonl"))

    if ev:
        rows = "\n".join(
            f"| {f} | {ev['families'][f]['n']} | {ev['families'][f]['correct']} | {ev['families'][f]['accuracy']:.1f}% |" for f in FAMILY_ORDER if f in ev["families"]
        )
        o = ev["overall"]
        rows += f"\n| **overall** | {o['n']} | {o['correct']} | {o['accuracy']:.1f}% |"
        evaluator = ev.get("evaluator", "`npx tsx scripts/eval-model.ts` (onnxruntime-node, the exported model.onnx)")
        eval_section = f"Greedy decoding (at most 64 new tokens), evaluated by {evaluator}.\n\n| family | items | correct | accuracy |\n|---|---|---|---|\n{rows}"
    else:
        eval_section = "(no evaluation was recorded for this build)"

    timing_rows = "\n".join(f"| {k} | {v:.0f} s |" for k, v in timings.items())
    emb = m["embed_rank"]
    emb_text = (
        f"factorised and tied: each token id → a row of A ∈ R^(100277×{emb}) → up-projection to {D}; "
        f"the head is the mirror image (down-projection {D}→{emb}, then Aᵀ) plus a per-token output bias"
        if emb
        else f"tied {D}-dim embedding plus a per-token output bias"
    )

    def q(xs):
        return "\n".join(f"  - {x}" for x in xs)

    return f"""# {cfg['model_id']}

A tiny MM-Rec (Multi-Memory Recurrent) chat model, trained from scratch on this
machine on a synthetic chat corpus, to demonstrate and test the serving stack
end to end: chat, multi-turn memory, and tool calls. It knows only the
narrow skills below; anything else gets fluent-looking nonsense.

## Architecture

The reference MM-Rec block of `MM-REC.md` §2 (`kit/mmrec/model.py`): RMSNorm →
z = W_z x̂ → DPG decay γ = clamp(σ(W_up ReLU(W_down z)), 1e-6, 1−1e-6) →
recurrence h_t = z_t ⊙ σ(W_g h_(t−1)) + γ_t ⊙ h_(t−1) → residual W_o h → GELU FFN.
No attention, no KV cache: the whole conversation so far is {L} state tensors of {D} floats.

| | |
|---|---|
| layers × d_model | {L} × {D} |
| FFN size | {m['d_ffn']} |
| DPG rank | {m['dpg_rank']} |
| embedding | {emb_text} |
| parameters | {m['parameters']:,} |
| model.onnx | {size / 1e6:.1f} MB (fp16 weights, float32 compute) |
| recurrent state | {L} × [batch, {D}] float32 = {L * D * 4 / 1024:.1f} KiB per sequence, whatever its length |
| vocabulary | cl100k_base + chat special tokens (100277 ids) |

The ONNX graph (opset 17) takes `input_ids` [batch, seq] and `state_in.0..{L - 1}`,
and returns `logits` [batch, seq, 100277] and `state_out.0..{L - 1}`; each layer's
recurrence is one ONNX `Loop`. Feeding a sequence whole or in pieces with the
state carried over gives the same result (tested in `kit/tests`).

**Output bias.** Training restricts the softmax to the {len(ds.vocabulary())} token ids that occur in the
corpus. The other ~99.5k ids get an output bias of −20, which is what a full-softmax
model learns for tokens it never sees (every step pushes their logits down), so
the exported model still emits full-vocabulary logits and never samples a token
it has never seen.

## Chat format

`mm-rec-chat-v1` (`src/chat/template.ts`, the same code prepares the training data
and renders requests). Every message is its role token, a newline, the content, a
newline and `<|endoftext|>`; messages are joined by a newline; the generation
prompt is `\\n<|assistant|>\\n`; generation stops at `<|endoftext|>` (100257).
Special tokens: `<|endoftext|>` 100257, `<|system|>` 100261, `<|user|>` 100262,
`<|assistant|>` 100263, `<|tool|>` 100264, `<|tools|>` 100265, `<|tool_call|>` 100266.

Tools: the request's tools render first, as a `<|tools|>` message holding one
compact JSON object `{{"name","description","parameters"}}` per line. An assistant
tool call is written after the assistant's (possibly empty) text as
`<|tool_call|>{{"name":"get_weather","arguments":{{"city":"Paris"}}}}`; a tool result
is a `<|tool|>` message. Example:

```
<|tools|>
{{"name":"get_weather","description":"Get the current weather in a city","parameters":{{"type":"object","properties":{{"city":{{"type":"string"}}}},"required":["city"]}}}}
{{"name":"search_web","description":"Search the web","parameters":{{...}}}}
<|endoftext|>
<|user|>
What's the weather in Paris?
<|endoftext|>
<|assistant|>
<|tool_call|>{{"name":"get_weather","arguments":{{"city":"Paris"}}}}
<|endoftext|>
<|tool|>
{{"city": "Paris", "temperature_c": 18, "condition": "sunny"}}
<|endoftext|>
<|assistant|>
It's currently 18°C and sunny in Paris.
<|endoftext|>
```

The loss covers assistant output only: content, tool calls, the closing newline
and `<|endoftext|>`.

## Training data

`kit/mmrec/corpus.py`, deterministic (seed {corpus_stats.get('seed', '?')}), nothing downloaded:
{corpus_stats.get('train_conversations', len(ds)):,} conversations, {ds.header['tokens']:,} tokens of which {ds.header['trained_tokens']:,}
({100 * ds.header['trained_tokens'] / ds.header['tokens']:.1f}%) are trained assistant tokens. Conversations mix the families
below over {shape['ex_min']}–{shape['ex_max']} exchanges (mean {shape['ex_mean']:.1f}); {100 * shape['system']:.0f}% have a system prompt (one of
{len(corpus.SYSTEM_PROMPTS) - 1}); {100 * shape['tools']:.0f}% carry a `tools` list (get_weather plus 2–3 of {len(corpus.OTHER_TOOLS)} others, shuffled):
every conversation with a weather or time question, and {100 * corpus.TOOLS_P:.0f}% of the others.

1. **capital** — {len(corpus.COUNTRIES)} countries. Questions:
{q(p.format(x='France') for p in corpus.CAPITAL_Q)}
   Answers: "The capital of France is Paris." / "Paris is the capital of France."
2. **arithmetic** — every single-digit pair, addition and subtraction (negative results included). Questions:
{q(p.format(a=7, b=5) for p in corpus.ADD_Q)}
{q(p.format(a=9, b=3) for p in corpus.SUB_Q)}
   Answer: "7 + 5 = 12."
3. **name_recall** — {len(corpus.NAMES)} first names. The user introduces themself
   ({_list(p.format(n='Alice') for p in corpus.INTRO_Q)}), 0–4 other exchanges follow,
   then asks {_list(corpus.RECALL_Q)} → "Your name is Alice." (in 35% of these
   conversations the question comes again 0–2 exchanges later). Asked without having
   given a name (3% of conversations) → "{corpus.RECALL_UNKNOWN_A}"
4. **tool_call / tool_answer** — {len(corpus.CITIES)} cities:
{q(p.format(c='Paris') for p in corpus.WEATHER_Q)}
   → `get_weather {{"city": "Paris"}}` (empty text); the `tool` result
   `{{"city", "temperature_c" (−5…35), "condition" ({', '.join(corpus.CONDITIONS)})}}` →
   "It's currently 18°C and sunny in Paris." / "Right now it is 18°C and sunny in Paris."
   35% of weather conversations ask again for a second city. When `get_time` is
   offered, {_list(p.format(c='Tokyo') for p in corpus.TIME_Q)} → `get_time {{"city": "Tokyo"}}`.
5. **greeting** — {_list(g for g, _ in corpus.GREETINGS)} → a greeting ending in
   "How can I help you today?"; {_list(corpus.WHO_Q)} → "{corpus.WHO_A}"; thanks → "You're welcome!".

## Held-out evaluation

`heldout.jsonl` ({corpus_stats.get('heldout_per_family', '?')} items per family) comes from the same generator with a different
seed. Every exchange has a *combination key*; a fixed hash puts 1 in {corpus.HELDOUT_MOD} keys on the
held-out side, training never contains an exchange with a held-out key (not even as
filler), and each evaluated exchange has one:

| family | key (held-out combinations are new) |
|---|---|
| capital | country × question phrasing × system prompt × turn position |
| arithmetic | operation × both digits × phrasing × system prompt × turn position |
| name_recall | name × introduction phrasing × recall phrasing × number of exchanges in between (1–4) |
| tool_call | city × phrasing × system prompt × exact tool list and order × turn position |
| tool_answer | city × temperature × condition of the tool result |
| greeting | greeting or "who are you" phrasing × system prompt × turn position |

Each country, digit pair, name and city does occur in training, in other
combinations: capitals cannot be inferred, and a recurrent model can only copy a
name or city into its answer if it has seen that token. The generator also checks
that no held-out prompt (tools + messages) is a prefix of a training conversation
({corpus_stats.get('train_prompts', '?'):,} training prompts, {corpus_stats.get('train_keys', '?'):,} training keys checked).

{eval_section}

## Training

`kit/mmrec/train.py`: {args['steps']} steps of AdamW (β 0.9/0.95, weight decay {args['weight_decay']}), batch
{args['batch_size']} conversations (length-bucketed, right-padded), peak LR {args['lr']} with {args['warmup']} warm-up steps and
cosine decay to {args['min_lr_ratio']}×, gradient clipping at {args['clip']}, seed {args['seed']}, {args['threads']} threads.
It processed {summary.get('tokens', 0):,} tokens in {summary.get('elapsed_s', 0) / 60:.1f} minutes:
**{summary.get('tok_per_s', 0):,.0f} tokens/s** (fwd + bwd) on this 2-core CPU machine (no other jobs running).

| stage of `kit/retrain-tiny.sh` | wall time |
|---|---|
{timing_rows}

## Rebuild

    bash kit/retrain-tiny.sh

generates the corpus, prepares it with `npm run prepare-data`, trains, exports to
`models/{cfg['model_id']}/`, evaluates the export with `scripts/eval-model.ts` and rewrites
this card. The run is deterministic given the same PyTorch build and thread count.

## Limitations

- Knows only the five families above, with the phrasings listed; paraphrases far
  from them, other countries, names or cities it has never seen fail.
- English only; no general knowledge, reasoning or arithmetic beyond single digits.
- Only `get_weather` and `get_time` calls were trained; it reads any tool list
  but will not call other tools sensibly.
- Trained on conversations of at most ~{args['max_len']} tokens; the state does not grow, but
  memory of a name fades over much longer conversations.
- Sampling at the default temperature 0.7 is usually fine; greedy decoding is what was evaluated.
"""


def _size(path: str) -> str:
    n = os.path.getsize(path)
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n:,} bytes"


def render_finetune(cfg: dict, model_dir: str) -> str:
    """The card of a directory written by mmrec.finetune, from its config.json's fine_tune section."""
    ft = cfg["fine_tune"]
    hp = ft["hyperparameters"]
    m = cfg["model"]
    state = cfg.get("initial_state")
    base = cfg.get("base_model")
    files = [f"| `{f}` | {_size(os.path.join(model_dir, f))} |" for f in ("model.onnx", state["file"] if state else None) if f and os.path.exists(os.path.join(model_dir, f))]
    if ft["method"] == "state":
        what = (f"**State tuning**: every weight of the base is frozen; only the initial recurrent state (one vector per layer, "
                f"{m['n_layers']} × {m['d_model']} floats) was trained. Serve it with the base graph `{base['path']}/model.onnx` "
                f"(`{base['model_id']}`, sha256 `{base['sha256']}`), starting every sequence from `{state['file']}` instead of zeros.")
    else:
        what = "**Full fine-tuning**: every weight was trained" + (
            f", and the initial recurrent state the base started from (`{state['file']}`: sequences start from it instead of zeros)." if state else ".")
    rows = "\n".join(f"| {k} | {v} |" for k, v in hp.items())
    return f"""# {cfg['model_id']}

Fine-tuned from `{ft['from_model']['model_id']}` (`{ft['from_model']['path']}`) by `kit/mmrec/finetune.py`.
{what}

Its architecture, chat format and skills are the base model's (see the base model's card);
the fine-tuning data add to them.

## Training

| | |
|---|---|
| data | `{ft['training_file']['path']}` (sha256 `{ft['training_file']['sha256']}`), {ft['training_file']['examples_used']} of {ft['training_file']['examples']} conversations used |
| steps | {ft['step']} of {ft['total_steps']} (epoch {ft['epoch']} of {hp['n_epochs']}) |
| trained tokens | {ft['trained_tokens']:,} (assistant tokens that carried the loss) |
| last epoch | train loss {ft['train_loss']:.4f}, mean token accuracy {100 * ft['train_mean_token_accuracy']:.1f}% |
| seed | {ft['seed']} |
| training time | {ft['elapsed_s']:.1f} s |
| tokens new to the base | {ft['new_tokens']} |
| PyTorch | {ft['torch']} |

| hyperparameter | value |
|---|---|
{rows}

AdamW (β 0.9/0.95), linear warm-up over `warmup_steps`, cosine decay to `min_lr_ratio` × the
peak at the last step, gradient clipping at `clip`; the loss covers assistant output only.

## Files

| file | size |
|---|---|
{chr(10).join(files)}
| `config.json` | model id, tokenizer, chat template{', initial state' if state else ''}{', base model' if base else ''}, this run's `fine_tune` record |
"""


def main() -> None:
    ap = argparse.ArgumentParser(description="Write a trained model directory's README.md from its retrain run.")
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--run", required=True, help="the run directory (data/, train-summary.json, eval.json, timings.json)")
    a = ap.parse_args()
    text = render(a.model_dir, a.run)
    with open(os.path.join(a.model_dir, "README.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
