"""Template graph benchmark: validate, save, publish and read back a 10,000-node graph.

    uv run python tests/perf/bench_templates.py [--nodes 10000] [--edges 20000] [--rounds 5]
        [--profile out.html]

Starts its own PostgreSQL and Redis (servicekit.devstack), migrates template-svc's schema, runs
template-svc under uvicorn (1 worker, uvloop, httptools, log level warning) and drives it over
HTTP with httpx. The graph is a cabinet assembly line scaled up: stations in a tree of parent
keys, work steps chained inside each station and feeding later stations, QC checkpoints with
checklists; `--nodes` nodes and exactly `--edges` dependency edges, acyclic.

Each round creates a template and an empty draft (not timed), then times, one request each:

(a) POST /api/v1/templates/validate        the graph, dry run
(b) PUT  .../versions/1                     the draft's whole graph
(c) POST .../versions/1/publish             validate and freeze
(d) GET  .../versions/1                     the published version with its whole graph

Prints the median and the worst of each over the rounds, and whether it meets its goal
(issue 3): validating under 1 s, saving and publishing (b + c) under 1 s, reading back under
300 ms. The figures include the HTTP round trip on loopback (the client reads the whole
response body but does not parse it). `--profile` runs the service under pyinstrument (e.g.
`uv run --with pyinstrument python tests/perf/bench_templates.py --profile p.html`, or a .txt
name for text); timings measured that way are not comparable.

By default it runs twice: the service as it ships (`as-shipped`, whose garbage collector is tuned
after start-up: `gc.freeze()` and a first-generation threshold of 50,000, servicekit's
`gc_tuning`) and the same service with that tuning off (`gc-untuned`), because collections
triggered by the hundreds of thousands of objects a graph of this size allocates are most of the
time of each request. `--variant` runs one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from benchkit import Platform, platform, stop

import template_svc
from servicekit.jsonutil import dumps

STATION_KINDS = [
    ("cut", "Cut the sheet metal", "work", "cutter"),
    ("bend", "Bend the panels", "work", "press-operator"),
    ("weld", "Weld the frame", "work", "welder"),
    ("grind", "Grind the seams", "work", "welder"),
    ("inspect-welds", "Inspect the welds", "qc", "inspector"),
    ("paint", "Powder-coat the panels", "work", "painter"),
    ("mount-doors", "Mount the doors and hinges", "work", "assembler"),
    ("wire", "Fit the wiring", "work", "electrician"),
    ("test-electrics", "Test the electrics", "qc", "inspector"),
    ("label", "Apply the rating plate", "work", "assembler"),
]
CHECKLISTS = {
    "inspect-welds": [
        {"code": "WELD-01", "text": "Seams are continuous, no porosity", "required": True},
        {"code": "WELD-02", "text": "Frame is square within 2 mm", "required": True},
    ],
    "test-electrics": [
        {"code": "ELEC-01", "text": "Earth continuity below 0.1 ohm", "required": True},
        {"code": "ELEC-02", "text": "Insulation resistance above 1 Mohm", "required": True},
        {"code": "ELEC-03", "text": "Door switch cuts the power", "required": False},
    ],
}


def cabinet_line(nodes: int, edges: int, seed: int = 42) -> dict[str, Any]:
    """A valid graph of `nodes` nodes and exactly `edges` edges, in the API's shape.

    Nodes come in stations of ten steps (cut, bend, weld, ... label) grouped under a station
    node; steps are chained inside a station, and extra edges run from a step to a step of a
    later station, so every edge goes forward in node order (no cycle, no duplicate).
    """
    rng = random.Random(seed)
    out_nodes: list[dict[str, Any]] = []
    station = -1
    while len(out_nodes) < nodes:
        station += 1
        group = f"station-{station:04d}"
        out_nodes.append(
            {
                "key": group,
                "title": f"Station {station}",
                "kind": "station",
                "work_kind": "milestone",
            }
        )
        for step, title, work_kind, role in STATION_KINDS:
            if len(out_nodes) >= nodes:
                break
            checklist = CHECKLISTS.get(step, [])
            out_nodes.append(
                {
                    "key": f"{group}.{step}",
                    "title": f"{title} (station {station})",
                    "description": f"Cabinet line, station {station}: {title.lower()}.",
                    "work_kind": work_kind,
                    "priority": 40 + (station % 50),
                    "qc_required": bool(checklist),
                    "qc_checklist": checklist,
                    "estimate_hours": 1.5,
                    "due_offset_hours": 8.0 * (station + 1),
                    "parent_key": group,
                    "role_hint": role,
                }
            )
    keys = [n["key"] for n in out_nodes]
    pairs: set[tuple[int, int]] = set()
    for i in range(1, len(keys)):  # the chain: each node after the one before it
        if len(pairs) >= edges:
            break
        pairs.add((i - 1, i))
    while len(pairs) < edges:
        i = rng.randrange(0, len(keys) - 1)
        j = rng.randrange(i + 1, min(len(keys), i + 60))
        pairs.add((i, j))
    ordered = sorted(pairs)
    rng.shuffle(ordered)
    return {
        "nodes": out_nodes,
        "edges": [{"blocker": keys[i], "dependent": keys[j]} for i, j in ordered],
    }


# The service as it ships (the garbage collector tuned after start-up, servicekit's
# `gc_tuning`), and the same service with that tuning off, to show what it buys.
VARIANTS: dict[str, dict[str, str]] = {
    "as-shipped": {},
    "gc-untuned": {"TEMPLATE_SVC_GC_TUNING": "false"},
}

# ---------------------------------------------------------------------------------------------


@dataclass
class Step:
    name: str
    goal_ms: float | None
    ms: list[float] = field(default_factory=list)

    def line(self) -> str:
        median, worst = statistics.median(self.ms), max(self.ms)
        verdict = ""
        if self.goal_ms is not None:
            ok = "meets" if worst < self.goal_ms else "MISSES"
            verdict = f"  goal < {self.goal_ms:,.0f} ms: {ok} (worst)"
        return f"{self.name:<36} median {median:7.1f} ms   worst {worst:7.1f} ms{verdict}"


async def timed(
    http: httpx.AsyncClient, step: Step, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    t0 = time.perf_counter()
    resp = await http.request(method, url, **kwargs)
    _ = resp.content
    step.ms.append((time.perf_counter() - t0) * 1000)
    return resp


def expect(resp: httpx.Response, status: int) -> httpx.Response:
    if resp.status_code != status:
        raise RuntimeError(
            f"{resp.request.method} {resp.request.url.path}: {resp.status_code} "
            f"(expected {status}): {resp.text[:500]}"
        )
    return resp


async def bench(base_url: str, token: str, args: argparse.Namespace) -> None:
    graph = cabinet_line(args.nodes, args.edges)
    body = dumps(graph)
    print(
        f"graph: {len(graph['nodes']):,} nodes, {len(graph['edges']):,} edges, "
        f"{len(body) / 1e6:.1f} MB of JSON; {args.rounds} rounds; {os.cpu_count()} CPUs"
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    validate = Step("(a) POST /templates/validate", 1000.0)
    put = Step("(b) PUT .../versions/1 (save draft)", None)
    publish = Step("(c) POST .../versions/1/publish", None)
    save_publish = Step("(b + c) save and publish", 1000.0)
    read = Step("(d) GET .../versions/1 (published)", 300.0)
    async with httpx.AsyncClient(base_url=base_url, timeout=120.0, headers=headers) as http:
        for n in range(args.rounds + 1):  # round 0 warms the service up, not counted
            steps = (
                (validate, put, publish, read)
                if n
                else tuple(Step(s.name, None) for s in (validate, put, publish, read))
            )
            key = f"cabinet-line-{n}-{uuid.uuid4().hex[:8]}"
            created = expect(
                await http.post(
                    "/api/v1/templates", content=dumps({"key": key, "name": f"Cabinet line {n}"})
                ),
                201,
            ).json()
            base = f"/api/v1/templates/{created['id']}/versions"
            expect(await http.post(base), 201)

            resp = expect(
                await timed(http, steps[0], "POST", "/api/v1/templates/validate", content=body),
                200,
            )
            if resp.json()["valid"] is not True:
                raise RuntimeError(f"the bench graph is not valid: {resp.text[:500]}")
            expect(
                await timed(
                    http, steps[1], "PUT", f"{base}/1", content=body, headers={"If-Match": '"1"'}
                ),
                200,
            )
            resp = expect(await timed(http, steps[2], "POST", f"{base}/1/publish"), 200)
            if resp.json()["status"] != "published":
                raise RuntimeError(f"not published: {resp.text[:300]}")
            resp = expect(await timed(http, steps[3], "GET", f"{base}/1"), 200)
            if len(resp.json()["nodes"]) != len(graph["nodes"]):
                raise RuntimeError("the version read back does not have every node")
            if n:
                save_publish.ms.append(put.ms[-1] + publish.ms[-1])
    for step in (validate, put, publish, save_publish, read):
        print(step.line(), flush=True)


# ---------------------------------------------------------------------------------------------


def run(p: Platform, args: argparse.Namespace) -> None:
    token = p.token(sub=str(uuid.uuid4()), roles=["planner"], org_id=uuid.uuid4())
    env = p.service_env(LOG_LEVEL="WARNING")  # the relay (not in process) is not measured
    variants = list(VARIANTS) if args.variant == "both" else [args.variant]
    for variant in variants:
        print(f"== template-svc, {variant}", flush=True)
        api = p.start_api(
            "template_svc.main:create_app",
            {**env, **VARIANTS[variant]},
            log_level="warning",
            profile=args.profile,
        )
        try:
            asyncio.run(bench(api.url, token, args))
        finally:
            stop(api)
    if args.profile:
        print(f"profile of the service written to {args.profile}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--edges", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--variant",
        choices=[*VARIANTS, "both"],
        default="both",
        help="the service as it ships, with its garbage collector tuning off, or both in turn",
    )
    parser.add_argument(
        "--profile", default=None, help="write a pyinstrument report here (.html or .txt)"
    )
    args = parser.parse_args()
    if args.profile:
        args.profile = str(Path(args.profile).resolve())
        if args.variant == "both":
            args.variant = "as-shipped"  # one report per run

    with platform(template_svc, name="templates") as p:
        run(p, args)


if __name__ == "__main__":
    main()
