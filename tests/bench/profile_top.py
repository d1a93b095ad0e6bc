"""The top frames of a py-spy raw profile (`py-spy record --format raw`), as text.

    .venv/bin/python -m tests.bench.profile_top tests/bench/results/profile-scale-1000-create-cpu.txt

Each line of a raw profile is one stack, root first, frames separated by ";", then the
number of samples. Prints, with shares of all samples:
- self: the innermost frame (where the time is spent);
- inclusive: every function on the stack (what the time is spent under);
- operator: the innermost frames of the operator's own code (bluegreen/), two deep, which
  is where an engineer would change something.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*)(?::\d+)?\)$")


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


def report(path: Path, limit: int = 25) -> str:
    stacks = parse(path)
    total = sum(c for _, c in stacks)
    out = [f"{path.name}: {total} samples"]
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
    args = parser.parse_args()
    for path in args.profiles:
        print(report(path, args.limit))
        print()


if __name__ == "__main__":
    main()
