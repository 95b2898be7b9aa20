#!/usr/bin/env bash
# Every measurement a lent GPU should make, in one call of at most 8 minutes, into one JSON of numbers:
#   train      tokens/s and MFU of a ~0.5 B Llama built from a config (random weights, bf16), packed vs padded
#   distill    seconds per step of plain SFT, online KD and offline top-k KD (the same student and batch)
#   structured constrained vs free decoding on the transformers backend (xgrammar's mask)
# Each part runs under its own time limit; one that fails or runs out records its error and the rest go on.
#
#   bash benchmarks/gpu.sh [--out FILE]          # on the GPU machine (default FILE: $OUT/gpu.json or gpu.json)
#   bash benchmarks/gpu.sh --cpu --tiny --out F  # the same script end to end on a CPU with tiny models (tests)
set -u
cd "$(dirname "$0")/.." || exit 2
cpu=0 tiny=0 out="${OUT:-.}/gpu.json"
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) cpu=1 ;;
    --tiny) tiny=1 ;;
    --out) shift; out="$1" ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "gpu.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
py="${PYTHON:-}"
[ -n "$py" ] || { [ -x .venv/bin/python ] && py=.venv/bin/python || py=python3; }
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gpu=(--gpu) size=(--size 0.5b) limit_train=170 limit_distill=170 limit_structured=110
[ "$cpu" = 1 ] && gpu=()
[ "$tiny" = 1 ] && size=(--size tiny)
small=()
[ "$tiny" = 1 ] && small=(--steps 3 --batch 16)

part() {  # NAME SECONDS COMMAND...: the command's JSON on stdout becomes $work/NAME.json, or an error record
  local name=$1 limit=$2; shift 2
  local started=$SECONDS
  if timeout "$limit" "$@" >"$work/$name.out" 2>"$work/$name.err"; then
    sed -n '/^{/,$p' "$work/$name.out" >"$work/$name.json"
  else
    local rc=$?
    "$py" - "$name" "$rc" "$work/$name.err" >"$work/$name.json" <<'PY'
import json, sys
name, rc, err = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], errors="replace").read().strip().splitlines()
why = "ran past its time limit" if rc in (124, 137) else f"exit {rc}"
print(json.dumps({"error": f"{name}: {why}", "stderr_tail": err[-5:]}))
PY
  fi
  echo "$name: $((SECONDS - started)) s" >&2
}

part train "$limit_train" "$py" benchmarks/bench_train.py --json "${gpu[@]}" "${size[@]}" "${small[@]}"
part distill "$limit_distill" "$py" benchmarks/bench_distill.py --json "${gpu[@]}" "${size[@]}" \
  ${small:+--steps 3}
# constrained decoding needs xgrammar and a model: the embedded one where it is pulled, else a random Llama
model_args=()
if [ "$tiny" = 1 ] || ! "$py" -c 'from labrador.trainer.models.store import models_root; import sys; sys.exit(not (models_root() / "smollm2-135m-instruct" / "config.json").is_file())' 2>/dev/null; then
  "$py" - "$work/model" "${size[1]}" <<'PY' && model_args=(--model "$work/model")
import sys
sys.path.insert(0, "benchmarks"); sys.path.insert(0, "tests")
from pathlib import Path
from bench_train import build_model
build_model(Path(sys.argv[1]), False, sys.argv[2])
PY
fi
part structured "$limit_structured" "$py" benchmarks/bench_structured.py "${model_args[@]}" \
  $([ "$tiny" = 1 ] && echo --rows 4 --max-tokens 32 --repeat 1)

"$py" - "$work" "$out" "$cpu" "$tiny" <<'PY'
import json, platform, sys
from pathlib import Path
work, out = Path(sys.argv[1]), Path(sys.argv[2])
report = {"machine": platform.node(), "cpu_only": sys.argv[3] == "1", "tiny": sys.argv[4] == "1"}
try:
    import torch
    report["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    report["torch"] = torch.__version__
except ImportError:
    report["device"] = "no torch"
for name in ("train", "distill", "structured"):
    try:
        report[name] = json.loads((work / f"{name}.json").read_text())
    except (OSError, ValueError) as exc:
        report[name] = {"error": f"{name}: no JSON ({exc})"}
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(json.dumps(report, indent=1) + "\n")
print(f"wrote {out}")
failed = [n for n in ("train", "distill", "structured") if "error" in report[n]]
sys.exit(1 if failed else 0)
PY
