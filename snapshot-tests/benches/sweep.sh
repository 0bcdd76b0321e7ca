#!/usr/bin/env bash
# End-to-end sweep throughput: about 10,000 scripted episodes of the blackmail world
# through `terrarium run`, transcripts and episodes.jsonl written (group-commit sync),
# on whatever cores the machine has. Prints wall time and peak memory (GNU time).
# Issue 6 target: 10,000 scripted episodes in under 10 s on a 2-core machine.
# Usage: snapshot-tests/benches/sweep.sh [SAMPLES_PER_CELL]   (default 1667: 6 cells)
set -euo pipefail
cd "$(dirname "$0")/../.."
samples=${1:-1667}
cargo build --release -p terrarium --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
/usr/bin/time -f "wall %e s, peak RSS %M KB" \
    ./target/release/terrarium run worlds/blackmail --model scripted/blackmail \
    --samples "$samples" --out "$out/run" 2>&1 >"$out/stdout" | grep -v -e '^note:' -e '^progress:'
tail -1 "$out/stdout"
echo "run folder: $(du -sh "$out/run" | cut -f1)"
