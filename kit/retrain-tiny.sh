#!/usr/bin/env bash
# Rebuild models/mm-rec-tiny from nothing: synthetic corpus → npm run prepare-data →
# train → export → held-out evaluation of the exported ONNX model → model card.
# Prints the wall time of every stage. About 25 minutes on the 2-core build machine.
#
#   bash kit/retrain-tiny.sh            (RUN=runs/tiny by default; it is wiped first)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUN="${RUN:-$ROOT/runs/tiny}"
MODEL="${MODEL:-$ROOT/models/mm-rec-tiny}"
PY=/usr/bin/python3

# The configuration of the committed model (see the model card for why).
CONVERSATIONS=45000
SEED=1234
TRAIN_ARGS=(--preset tiny --steps 650 --batch-size 64 --lr 3e-3 --warmup 50 --min-lr-ratio 0.05
            --weight-decay 0.05 --max-len 640 --seed 0 --threads 2 --log-every 25 --ckpt-every 100)

rm -rf "$RUN"
mkdir -p "$RUN/data"
TIMINGS="$RUN/timings.json"
echo "{}" > "$TIMINGS"
secs_since() { $PY -c 'import sys, time; print(f"{time.time() - float(sys.argv[1]):.1f}")' "$1"; }
TOTAL_START=$(date +%s.%N)

stage() {
  local name="$1"; shift
  echo "[retrain] === $name ===" >&2
  local t0; t0=$(date +%s.%N)
  "$@"
  local dt; dt=$(secs_since "$t0")
  printf '[retrain] %s: %.0f s\n' "$name" "$dt" >&2
  $PY - "$TIMINGS" "$name" "$dt" <<'PY'
import json, sys
path, name, dt = sys.argv[1], sys.argv[2], float(sys.argv[3])
t = json.load(open(path)); t[name] = dt
json.dump(t, open(path, "w"), indent=2)
PY
}

evaluate() {
  # The server's evaluator on the exported ONNX model; the kit's PyTorch evaluator
  # (same template, greedy decoding) only if that script is absent or fails.
  if [ -f "$ROOT/scripts/eval-model.ts" ] &&
     (cd "$ROOT" && npx --no-install tsx scripts/eval-model.ts --model "$MODEL" --data "$RUN/data/heldout.jsonl" --json "$RUN/eval.json" --batch 16); then
    return 0
  fi
  echo "[retrain] scripts/eval-model.ts unavailable or failed; evaluating the checkpoint in PyTorch" >&2
  (cd "$ROOT/kit" && $PY -m mmrec.evaluate --checkpoint "$RUN/final.pt" --data "$RUN/data/heldout.jsonl" --json "$RUN/eval.json")
}

stage corpus bash -c "cd '$ROOT/kit' && $PY -m mmrec.corpus --out '$RUN/data' --conversations $CONVERSATIONS --seed $SEED"
stage prepare-data bash -c "cd '$ROOT' && npm run --silent prepare-data -- --input '$RUN/data/train.jsonl' --output '$RUN/data/train.mmrecds'"
stage train bash -c "cd '$ROOT/kit' && $PY -m mmrec.train --data '$RUN/data/train.mmrecds' --out '$RUN' ${TRAIN_ARGS[*]}"
stage export bash -c "cd '$ROOT/kit' && $PY -m mmrec.export --checkpoint '$RUN/final.pt' --out '$MODEL' --model-id mm-rec-tiny"
stage evaluate evaluate
TOTAL=$(secs_since "$TOTAL_START")
$PY - "$TIMINGS" "$TOTAL" <<'PY'
import json, sys
t = json.load(open(sys.argv[1])); t["total"] = float(sys.argv[2])
json.dump(t, open(sys.argv[1], "w"), indent=2)
PY
(cd "$ROOT/kit" && $PY -m mmrec.card --model-dir "$MODEL" --run "$RUN")
echo "[retrain] timings (s): $(cat "$TIMINGS" | tr -d '\n ')" >&2
printf '[retrain] total: %.0f s; model card: %s/README.md\n' "$TOTAL" "$MODEL" >&2
