#!/usr/bin/env bash
# End-to-end sweep throughput: about 10,000 scripted episodes of the blackmail world
# (6 cells × SAMPLES) through `terrarium run`, transcripts and episodes.jsonl written
# (group-commit sync), on whatever cores the machine has. Prints wall time, peak
# memory (GNU time) and the folder's bytes per episode. Issue 6 target: 10,000 scripted episodes in under 10 s on 2 cores.
# Usage: snapshot-tests/benches/sweep.sh [SAMPLES_PER_CELL]   (default 1667)
# With UPDATE_DOCS=1 the figures replace README.md's `bench:sweep` block; a CLI test
# checks that block's episode count against the command it names.
set -euo pipefail
cd "$(dirname "$0")/../.."
samples=${1:-1667}
args=(run worlds/blackmail --model scripted/blackmail --condition goal=explicit,value=safety,instruction=not_told,belief=not_asked,deliberation=none --samples "$samples")
cargo build --release -p terrarium --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rounds=${ROUNDS:-3}
walls=()
for round in $(seq "$rounds"); do
    rm -rf "$out/run"
    /usr/bin/time -f "%e %M" -o "$out/time" \
        ./target/release/terrarium "${args[@]}" --out "$out/run" >"$out/stdout" 2>/dev/null
    read -r wall rss <"$out/time"
    walls+=("$wall")
    echo "round $round: wall $wall s, peak RSS $rss KB" >&2
done
median=$(printf '%s\n' "${walls[@]}" | sort -g | sed -n "$(( (rounds + 1) / 2 ))p")
episodes=$(grep -E ' new, ' "$out/stdout" | grep -oE '^[0-9,]+ episodes')
size=$(du -sh "$out/run" | cut -f1)
# Bytes per episode: what the folder's files hold (`du -sb`), over its episodes.
count=$(echo "$episodes" | grep -oE '^[0-9,]+' | tr -d ,)
per=$(( $(du -sb "$out/run" | cut -f1) / count ))
line="\`snapshot-tests/benches/sweep.sh\` runs \`terrarium ${args[*]}\`: $episodes, wall $median s (median of $rounds rounds), peak RSS $rss KB, run folder $size, $per bytes per episode ($(nproc) cores, $(date -u +%Y-%m-%d))."
echo "$line"
if [ "${UPDATE_DOCS:-}" = 1 ]; then
    awk -v line="$line" '
        /<!-- bench:sweep -->/ { print; print line; skip = 1; next }
        /<!-- \/bench:sweep -->/ { skip = 0 }
        !skip { print }
    ' README.md >"$out/README.md"
    cp "$out/README.md" README.md
fi
