#!/usr/bin/env python3
r"""Who holds the heap at its peak, from a heaptrack recording of a model sweep.

    BENCH_WRAP="heaptrack -o /tmp/heap256" \
        cargo bench -p terrarium --no-default-features --bench concurrency -- 256
    BENCH_WRAP="heaptrack -o /tmp/heap1" \
        cargo bench -p terrarium --no-default-features --bench concurrency -- 1
    python3 tools/benches/heap_owners.py /tmp/heap256.zst 256 /tmp/heap1.zst

`--no-default-features` builds the binary on the system allocator, which heaptrack
sees (mimalloc maps its own pages). Each allocation live at the peak is put with its
owner by the frames of its stack. With a baseline (the same sweep at C = 1), each
owner's figure is what it held above the baseline per further request in flight, as
the bench's "KB/in flight" column is; without one, what it held over C.
"""

import os
import re
import subprocess
import sys
import tempfile
from collections import Counter

# First match wins: (owner, any of these in the stack).
OWNERS = [
    ("hyper: the connection's dispatch channel", ["mpsc::chan::channel"]),
    ("hyper: the connection's write buffer", ["Buffered<T,B>::new"]),
    ("hyper: the connection's read buffer", ["poll_read_from_io"]),
    ("reqwest, hyper: request futures, headers, the rest", ["reqwest", "hyper", "tower", "http::header"]),
    ("the request body", ["ApiTarget::prepare", "ApiTarget::post"]),
    ("the replies, parsed", ["openai_chat::parse", "ApiTarget::interpret"]),
    ("the episode's start: environment, inbox, state", ["Episode::start", "Env::build"]),
    ("the episode's steps: events, state changes", ["Episode::"]),
    ("the episode's header", ["EpisodeKey::header"]),
    ("the episode's future (its state while it waits)", ["FuturesUnordered<Fut>::push"]),
    ("the run folder: index and records (per episode written)", ["run_folder", "Writer::", "Appender::"]),
    ("the sweep's plan", ["sweep::plan", "Plan::key"]),
]


def owner(stack: str) -> str:
    for name, marks in OWNERS:
        if any(m in stack for m in marks):
            return name
    return "other"


def clean(frame: str) -> str:
    frame = re.sub(r"::h[0-9a-f]{16}", "", frame)
    for a, b in [("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$C$", ","), ("..", "::")]:
        frame = frame.replace(a, b)
    return frame


def held_at_peak(recording: str) -> Counter:
    """Bytes live at the heap's peak, by owner."""
    if not os.path.isfile(recording):
        sys.exit(f"{recording}: no such recording (heaptrack -o NAME writes NAME.zst)")
    with tempfile.NamedTemporaryFile("r", suffix=".folded") as folded:
        try:
            subprocess.run(
                ["heaptrack_print", recording, "--flamegraph-cost-type", "peak", "-F", folded.name],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except FileNotFoundError:
            sys.exit("heaptrack_print is not installed (Debian: apt-get install heaptrack)")
        except subprocess.CalledProcessError as e:
            sys.exit(f"{recording}: heaptrack_print could not read it: {e.stderr.decode(errors='replace').strip()}")
        held = Counter()
        for line in folded:
            stack, _, size = line.rstrip().rpartition(" ")
            held[owner(";".join(clean(f) for f in stack.split(";")))] += int(size)
    if not held:
        sys.exit(f"{recording}: no allocations in it (is it a heaptrack recording?)")
    return held


def main() -> None:
    if len(sys.argv) not in (3, 4) or not sys.argv[2].isdigit() or int(sys.argv[2]) < 1:
        sys.exit(__doc__)
    held, in_flight = held_at_peak(sys.argv[1]), int(sys.argv[2])
    base = held_at_peak(sys.argv[3]) if len(sys.argv) == 4 else Counter()
    further = in_flight - 1 if base else in_flight
    if further < 1:
        sys.exit("a baseline needs a recording at C > 1 to compare")
    total, base_total = sum(held.values()), sum(base.values())
    print(f"peak heap {total / 1e6:.2f} MB", end="")
    print(f", baseline {base_total / 1e6:.2f} MB" if base else "", end="")
    print(f"; KB per {'further ' if base else ''}request in flight (C = {in_flight}):")
    owners = sorted(set(held) | set(base), key=lambda n: base[n] - held[n])
    for name in owners:
        print(f"{(held[name] - base[name]) / further / 1024:7.1f} KB  {name}")
    print(f"{(total - base_total) / further / 1024:7.1f} KB  in all")


if __name__ == "__main__":
    main()
