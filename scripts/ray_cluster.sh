#!/usr/bin/env bash
# A Ray cluster for ganzoo on real machines, and a sweep on it (docs/cluster.md).
#
#   on the head machine:     bash scripts/ray_cluster.sh head [PORT]          (PORT: 6379)
#   on every other machine:  bash scripts/ray_cluster.sh worker HEAD:PORT
#   on the head machine:     bash scripts/ray_cluster.sh bench HEAD:PORT RESULTS_DIR [ganzoo bench options]
#                            e.g. ... bench 10.0.0.1:6379 /shared/results --all --ray-max-retries 3
#   to leave the cluster:    bash scripts/ray_cluster.sh stop                  (stops every Ray process of yours here)
#
# Environment: CPUS, the CPUs a machine offers to runs (default: all of them; CPUS=0 on the head keeps it for the
# driver alone); STORAGE, shared (default: RESULTS_DIR is the same path on every machine, a network file system)
# or ship (run folders are sent back to the driver).
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 2; }

# Every machine needs ganzoo, Ray and the same plugins; say so here rather than in a worker's log later.
check_env() {
    python -c "import ganzoo, ray" 2>/dev/null || {
        echo "This machine's python lacks ganzoo or Ray: pip install 'ganzoo[ray]' (and your plugins) first." >&2
        exit 1
    }
}

cpus=()
if [[ -n "${CPUS:-}" ]]; then cpus=(--num-cpus "$CPUS"); fi

command="${1:-}"
shift || true
case "$command" in
    head)
        check_env
        port="${1:-6379}"
        ray start --head --port "$port" "${cpus[@]}"
        echo "Head started. On every other machine: bash $0 worker $(hostname -I | awk '{print $1}'):$port"
        ;;
    worker)
        [[ $# -ge 1 ]] || usage
        check_env
        ray start --address "$1" "${cpus[@]}"
        ;;
    bench)
        [[ $# -ge 2 ]] || usage
        check_env
        address="$1" results="$2"
        shift 2
        ray status --address "$address" | sed -n '/Resources/,$p'  # the CPUs and GPUs the sweep will use
        # A killed sweep loses nothing: run the same command again and it resumes (docs/cluster.md).
        exec ganzoo bench --executor ray --address "$address" --results-dir "$results" \
            --ray-storage "${STORAGE:-shared}" "${@:---all}"
        ;;
    stop)
        ray stop
        ;;
    *)
        usage
        ;;
esac
