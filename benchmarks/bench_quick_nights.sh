#!/usr/bin/env bash
# The main job's two timing targets (issue 30): night 1 of `labrador nightly --quick` on this repository's
# taxonomy from a fresh clone with empty caches, then night 2 after two leaves change (one seed answer each).
#
#   bash benchmarks/bench_quick_nights.sh [WORKDIR]      # uses this checkout's .venv; the embedded model pulled
#
# Prints each night's wall time, its steps' times (from the run record) and the held-out headline. A benchmark,
# not a test: the numbers go in the issue note with the machine they came from.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-$(mktemp -d)}
LAB="$ROOT/.venv/bin/labrador"
PY="$ROOT/.venv/bin/python"
rm -rf "$WORK/repo" && git clone -q "$ROOT" "$WORK/repo" && cd "$WORK/repo"
git config user.email bench@example.com && git config user.name bench

night() {
  local start end
  start=$(date +%s)
  "$LAB" nightly --quick >"$WORK/night-$1.log" 2>&1 || true  # a refused night still counts its time
  end=$(date +%s)
  echo "night $1: $((end - start)) s wall ($(tail -n 1 "$WORK/night-$1.log" | cut -c1-100))"
  "$PY" - "$1" <<'EOF'
import json, sys
from pathlib import Path
run = sorted(Path(".labrador/runs").glob("night-*"))[-1]
record = json.loads((run / "run.json").read_text())
steps = record.get("timings") or record.get("steps") or {}
print("  status:", record.get("status"), "| steps (s):", json.dumps(steps, default=str)[:400])
print("  samples:", json.dumps(record.get("samples", {}).get("night", {})))
print("  held-out:", json.dumps(record.get("metrics", {}).get("heldout_summary") or record.get("heldout", {}).get("summary"), default=str)[:400])
EOF
}

night 1
# night 2: two leaves change (a word in one seed answer each), merged as a contributor's pull request would be
"$PY" - <<'EOF'
from pathlib import Path
for leaf, old, new in [("compositional_skills/writing/freeform/haiku/qna.yaml", "morning wakes brand new", "morning wakes anew"),
                       ("foundational_skills/reasoning/logic/syllogisms/qna.yaml", None, None)]:
    path = Path("taxonomy") / leaf
    text = path.read_text()
    if old is None:  # the first answer line of the leaf gains a closing sentence
        lines = text.splitlines(keepends=True)
        i = next(i for i, line in enumerate(lines) if line.strip().startswith("answer:"))
        j = i + 1
        while j < len(lines) and lines[j].strip() and not lines[j].lstrip().startswith(("- ", "question:")):
            j += 1
        indent = lines[j - 1][: len(lines[j - 1]) - len(lines[j - 1].lstrip())]
        lines.insert(j, f"{indent}That is the whole argument.\n")
        text = "".join(lines)
    else:
        assert old in text, (leaf, old)
        text = text.replace(old, new, 1)
    path.write_text(text)
EOF
"$LAB" validate --taxonomy taxonomy >/dev/null
git commit -qam "two leaves change"
night 2
