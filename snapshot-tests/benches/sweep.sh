#!/usr/bin/env bash
# End-to-end sweep throughput: about 10,000 scripted episodes of the blackmail world
# (6 cells × SAMPLES) through `terrarium run`, transcripts and episodes.jsonl written
# (group-commit sync), on whatever cores the machine has. Prints wall time and peak
# memory (GNU time). Issue 6 target: 10,000 scripted episodes in under 10 s on 2 cores.
# Usage: snapshot-tests/benches/sweep.sh [SAMPLES_PER_CELL]   (default 1667)
# With UPDATE_DOCS=1 the figures replace README.md's `bench:sweep` block; a CLI test
# checks that block's episode count against the command it names.
set -euo pipefail
cd "$(dirname "$0")/../.."
samples=${1:-1667}
args=(run worlds/blackmail --model scripted/blackmail --condition goal=explicit,value=public,instruction=not_told --samples "$samples")
cargo build --release -p terrarium --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
/usr/bin/time -f "wall %e s, peak RSS %M KB" -o "$out/time" \
    ./target/release/terrarium "${args[@]}" --out "$out/run" >"$out/stdout" 2>/dev/null
episodes=$(grep -E ' new, ' "$out/stdout" | grep -oE '^[0-9,]+ episodes')
size=$(du -sh "$out/run" | cut -f1)
line="\`snapshot-tests/benches/sweep.sh\` runs \`terrarium ${args[*]}\`: $episodes, $(cat "$out/time"), run folder $size ($(nproc) cores, $(date -u +%Y-%m-%d))."
echo "$line"
if [ "${UPDATE_DOCS:-}" = 1 ]; then
    awk -v line="$line" '
        /<!-- bench:sweep -->/ { print; print line; skip = 1; next }
        /<!-- \/bench:sweep -->/ { skip = 0 }
        !skip { print }
    ' README.md >"$out/README.md"
    cp "$out/README.md" README.md
fi
