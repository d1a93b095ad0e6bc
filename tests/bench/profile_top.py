"""The top frames of a py-spy raw profile (`py-spy record --format raw`), as text.

    .venv/bin/python -m tests.bench.profile_top tests/bench/results/profile-scale-1000-create-cpu.txt

Each line of a raw profile is one stack, root first, frames separated by ";", then the
number of samples. Prints, with shares of all samples:
- self: the innermost frame (where the time is spent);
- inclusive: every function on the stack (what the time is spent under);
- operator: the innermost frames of the operator's own code (bluegreen/), two deep, which
  is where an engineer would change something.

`--on-cpu` drops the samples whose innermost frame waits (a socket read, select, poll, a
lock, an idle worker): py-spy counts a thread blocked in an SSL read as active, so its
default view of a client waiting on the API server is mostly waiting. What is left
approximates where the operator's CPU goes.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*)(?::\d+)?\)$")


WAITS = (
    "SSLSocket.read (",
    "SSLSocket.recv_into (",
    "EpollSelector.select (",
    "_PollLikeSelector.select (",
    "poll_wait_for_socket.<locals>.do_poll (",
    "_worker (concurrent/futures/thread.py",
    "_locked_pass (bluegreen/runtime/handlers.py",  # `with lock`: another pass of the same app runs
    "Condition.wait (",
    "Event.wait (",
    "Thread.join (",
)


def parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def name(frame: str) -> str:
    """`func (file:line)` -> `func (file)`: one entry per function, not per line."""
    m = _FRAME.match(frame)
    return f"{m.group('func')} ({m.group('file')})" if m else frame


def tops(stacks: list[tuple[list[str], int]]) -> dict[str, collections.Counter[str]]:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    operator: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        names = [name(f) for f in frames]
        own[names[-1]] += count
        for n in set(names):
            inclusive[n] += count
        ours = [n for n in names if "bluegreen/" in n]
        operator[" > ".join(ours[-2:]) if ours else "(not in operator code)"] += count
    return {"self": own, "inclusive": inclusive, "operator": operator}


def report(path: Path, limit: int = 25, on_cpu: bool = False) -> str:
    stacks = parse(path)
    everything = sum(c for _, c in stacks)
    if on_cpu:
        stacks = [(f, c) for f, c in stacks if not f[-1].startswith(WAITS)]
    total = sum(c for _, c in stacks)
    out = [f"{path.name}: {total} samples" + (f" on CPU of {everything}" if on_cpu else "")]
    if not total:
        return out[0]
    for title, counter in tops(stacks).items():
        out.append(f"\n{title}:")
        for n, c in counter.most_common(limit):
            out.append(f"  {100 * c / total:5.1f}%  {c:7d}  {n}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--limit", type=int, default=25)
    parser.add_argument("--on-cpu", action="store_true", help="drop samples that wait")
    args = parser.parse_args()
    for path in args.profiles:
        print(report(path, args.limit, args.on_cpu))
        print()


if __name__ == "__main__":
    main()
