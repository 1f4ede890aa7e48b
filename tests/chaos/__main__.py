"""`make chaos` / `python -m tests.chaos`: the long chaos run on a stack of its own.

Starts the platform on free ports in a temporary directory, walks projects through the gateway
for CHAOS_SECONDS (default 600, at most 900) while killing processes and restarting PostgreSQL
and Redis, checks, prints the figures and stops everything. Exits 1 when the checker finds
anything (the stack's logs are kept and their directory printed), 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import time

from blueprint_stack import Stack, StackError
from blueprint_stack.testing import processes_mentioning, temp_var_dir

from .faults import KINDS
from .harness import chaos_run, chaos_stack_config, consumer_env, figures

MAX_SECONDS = 900


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument(
        "--seconds", type=float, default=float(os.environ.get("CHAOS_SECONDS", 600))
    )
    parser.add_argument("--lanes", type=int, default=int(os.environ.get("CHAOS_LANES", 6)))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("CHAOS_SEED", 0)) or None)
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    parser.add_argument("--kinds", default=",".join(KINDS), help="fault kinds, comma-separated")
    parser.add_argument(
        "--claim-idle-ms",
        type=int,
        default=int(os.environ.get("CHAOS_CLAIM_IDLE_MS", 30_000)),
        help="consumers' claim timeout for a crashed consumer's entries (the default 30 s)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= MAX_SECONDS:
        parser.error(f"--seconds / CHAOS_SECONDS must be between 1 and {MAX_SECONDS}")
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown fault kinds {sorted(unknown)}; kinds: {', '.join(KINDS)}")
    seed = args.seed if args.seed is not None else random.randrange(1, 2**31)
    command = (
        f"CHAOS_SECONDS={args.seconds:g} CHAOS_LANES={args.lanes} CHAOS_SEED={seed}"
        + (f" CHAOS_CLAIM_IDLE_MS={args.claim_idle_ms}" if args.claim_idle_ms != 30_000 else "")
        + " make chaos"
    )
    os.environ.update(consumer_env(args.claim_idle_ms))
    var_dir = temp_var_dir("blueprint-chaos-")
    stack = Stack(chaos_stack_config(var_dir, ready_timeout=300.0))

    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    say(f"starting the platform in {var_dir} (seed {seed})")
    ok = False
    try:
        stack.start()
        say(f"platform up; {args.lanes} lanes for {args.seconds:g}s, faults: {', '.join(kinds)}")
        outcome = asyncio.run(
            chaos_run(
                stack, seconds=args.seconds, lanes=args.lanes, seed=seed,
                max_requests=args.max_requests, kinds=kinds, say=say,
            )
        )  # fmt: skip
        print(figures(outcome, command=command), flush=True)
        ok = outcome.ok
    except StackError as exc:
        print(f"chaos: {exc}", file=sys.stderr)
    finally:
        stack.stop()
        leftovers = processes_mentioning(str(var_dir))
        if leftovers:
            print(f"processes left behind: {leftovers}", file=sys.stderr)
            ok = False
        if ok:
            shutil.rmtree(var_dir, ignore_errors=True)
        else:
            print(f"the platform's logs are kept in {var_dir}/log", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
