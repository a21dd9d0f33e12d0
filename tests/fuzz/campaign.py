"""A long front-end fuzzing campaign (`make fuzz`): failing inputs are shrunk and saved.

    python tests/fuzz/campaign.py --seconds 600 [--seed 7] [--budget 1.0]

Runs seeded batches of generated and mutated specs (tests/_fuzz.py) through the front end
until the time is up. Each failure (an exception other than AttnccError, a diagnostic whose
span lies outside the text, or more than `--budget` seconds of CPU) is shrunk to a small input
that still fails the same way and written to tests/fuzz/regressions/, which
tests/test_fuzz.py replays on every run. Exit status 1 when anything failed.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _fuzz


def _kind(outcome: str) -> str:
    """The failure's kind, for shrinking to the same failure: the text before the first `:`."""
    return outcome.split(":", maxsplit=1)[0].split("(", maxsplit=1)[0].strip()


def save(data: str | bytes, outcome: str) -> Path:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    name = f"{_kind(outcome).replace(' ', '_')[:40]}_{hashlib.sha1(raw).hexdigest()[:10]}.attn"
    _fuzz.REGRESSIONS.mkdir(parents=True, exist_ok=True)
    path = _fuzz.REGRESSIONS / name
    path.write_bytes(raw)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="wall-clock time to run")
    ap.add_argument("--seed", type=int, default=int(time.time()), help="first batch's seed")
    ap.add_argument("--batch", type=int, default=200, help="inputs per seeded batch")
    ap.add_argument("--budget", type=float, default=1.0, help="CPU seconds one input may take")
    ap.add_argument("--no-save", action="store_true", help="report failures, save nothing")
    args = ap.parse_args(argv)

    _fuzz.judge(_fuzz.SPECS[0].read_text("utf-8"), _fuzz.front_end)  # imports, caches
    end = time.monotonic() + args.seconds
    seed, total, failures = args.seed, 0, 0
    kinds: dict[str, int] = {}
    while time.monotonic() < end:
        for data in _fuzz.inputs(seed, args.batch):
            v = _fuzz.judge(data, _fuzz.front_end, budget=args.budget)
            total += 1
            kinds[v.outcome if v.ok else "failed"] = kinds.get(
                v.outcome if v.ok else "failed", 0) + 1
            if v.ok:
                continue
            failures += 1
            kind = _kind(v.outcome)

            def fails(d: str | bytes, kind: str = kind) -> bool:
                w = _fuzz.judge(d, _fuzz.front_end, budget=args.budget)
                return not w.ok and _kind(w.outcome) == kind

            print(f"seed {seed}: {v.outcome}", flush=True)
            raw = None if args.no_save else save(data, v.outcome)
            small = _fuzz.shrink(data, fails, seconds=60)
            if raw is not None and len(small) < len(data):
                raw.unlink()
                raw = save(small, v.outcome)
            saved = f", saved as {raw}" if raw else ""
            print(f"  {len(data)} -> {len(small)} characters{saved}", flush=True)
            if time.monotonic() >= end:
                break
        seed += 1
    print(f"{total} inputs from seeds {args.seed}..{seed - 1}: " +
          ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
