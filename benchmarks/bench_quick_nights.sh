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
if [ "${FROM_NIGHT:-1}" = 1 ]; then  # FROM_NIGHT=2 reuses WORKDIR's night 1 and runs night 2 only
  rm -rf "$WORK/repo" && git clone -q "$ROOT" "$WORK/repo"
fi
cd "$WORK/repo"
git config user.email bench@example.com && git config user.name bench

night() {
  local start end
  start=$(date +%s)
  "$LAB" nightly --quick >"$WORK/night-$1.log" 2>&1 || true  # a refused night still counts its time
  end=$(date +%s)
  echo "night $1: $((end - start)) s wall ($(tail -n 1 "$WORK/night-$1.log" | cut -c1-100))"
  "$LAB" runs --format json >"$WORK/runs-$1.json"
  "$PY" - "$WORK/runs-$1.json" "$start" <<'EOF'
import json, sys
from pathlib import Path
record = json.load(open(sys.argv[1]))[0]  # newest first
start = int(sys.argv[2])
steps = sorted(Path(".labrador/runs", record["id"], "steps").glob("*.json"), key=lambda p: p.stat().st_mtime)
print("  status:", record["status"], "| steps done at (s):",
      ", ".join(f"{p.stem} {p.stat().st_mtime - start:.0f}" for p in steps))
print("  samples:", json.dumps(record.get("samples", {}).get("night", {})))
print("  why:", record.get("reason"))
EOF
}

if [ "${FROM_NIGHT:-1}" = 1 ]; then night 1; fi
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
