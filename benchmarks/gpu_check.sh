#!/usr/bin/env bash
# ganzoo on a GPU machine, in under 6 minutes (the step limits add up to 360 s): the CUDA tests, a short bench on CUDA, images/s and runs/hour
# with 1 and with several runs packed on the GPU, vectorised seed groups of 16 to 256, peak memory, and the projected
# time of the full digits grid.
#
# Run from the repository root, where ganzoo is installed (pip install --no-deps --no-build-isolation -e .):
#     bash benchmarks/gpu_check.sh [OUT_DIR]          # default OUT_DIR: $OUT, else /tmp/ganzoo-gpu-check
# Every step runs under its own time limit and a failing step does not stop the next: the log says which
# failed. Everything printed is also in OUT_DIR/gpu_check.log; the short bench's leaderboard is in OUT_DIR/bench.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-/tmp/ganzoo-gpu-check}}
mkdir -p "$OUT_DIR"
exec > >(tee "$OUT_DIR/gpu_check.log") 2>&1
PY=${PYTHON:-python3}
failed=()

step() {  # step NAME SECONDS COMMAND...: run with a time limit, time it, remember a failure
  local name=$1 limit=$2
  shift 2
  echo
  echo "== $name (limit ${limit}s): $*"
  local started=$SECONDS
  if timeout "$limit" "$@"; then
    echo "== $name: ok in $((SECONDS - started)) s"
  else
    echo "== $name: FAILED (exit $?) after $((SECONDS - started)) s"
    failed+=("$name")
  fi
}

step "environment" 30 "$PY" -c '
import importlib, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"gpu {i}: {p.name}, {p.total_memory / 2**30:.0f} GiB")
missing = [m for m in ("ganzoo", "timm", "pluggy", "click", "scipy", "pandas", "sklearn", "matplotlib", "jinja2",
                       "tabulate", "safetensors", "tqdm") if importlib.util.find_spec(m) is None]
print("missing modules:", ", ".join(missing) or "none")
raise SystemExit(0 if torch.cuda.is_available() and "ganzoo" not in missing else 1)'

step "cuda tests" 75 "$PY" -m pytest -m cuda -q -p no:cacheprovider tests/test_cuda.py

# The default suite's digits slice (every architecture and image stabilizer once), one seed, 300 G steps.
step "short bench on cuda" 55 "$PY" -m ganzoo bench --all --dataset digits --seeds 1 --g-steps 300 --device cuda \
  --results-dir "$OUT_DIR/bench" --no-progress

step "harness overhead on cuda" 40 "$PY" benchmarks/harness_overhead.py --device cuda --dataset digits \
  --g-steps 500 --rounds 2

step "packing and projection" 100 "$PY" benchmarks/gpu_throughput.py --device cuda --packs 1 4 8 --kimg 8 --probes 14

# Seeds as a batch dimension: one group of K digits-baseline seeds per size, training steps timed, and the full
# digits grid projected at the best size; then the vectorised executor end to end on the default's digits groups.
step "vectorised groups" 40 "$PY" benchmarks/vectorized_groups.py --device cuda --dataset digits --sizes 16 64 256
step "vectorised bench on cuda" 20 "$PY" -m ganzoo bench --all --dataset digits --generator dcgan --discriminator dcgan \
  --stabilizer none --seeds 16 --g-steps 100 --device cuda --executor vectorized --results-dir "$OUT_DIR/vbench" --no-progress

echo
if [ ${#failed[@]} -eq 0 ]; then
  echo "gpu_check: every step passed ($SECONDS s)"
else
  echo "gpu_check: failed steps: ${failed[*]} ($SECONDS s)"
  exit 1
fi
