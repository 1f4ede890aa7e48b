"""Project bootstrap benchmark: 3 deliverables x 200 nodes (600 tasks) in one transaction.

    uv run python tests/perf/bench_bootstrap.py [--deliverables 3] [--nodes 200] [--rounds 7]

Starts its own PostgreSQL cluster (servicekit.devstack) and migrates task-svc's schema. Prints
the median time of the bulk bootstrap (every kind of row in ONE statement: arrays + unnest) next
to the same tasks written by a loop of single-row INSERTs, both from the same run.
Goal: the bulk bootstrap of 600 tasks well under a second.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from servicekit.auth import Principal
from servicekit.db import Database, make_engine
from servicekit.dbadmin import ServiceSchema, provision
from servicekit.devstack import PostgresCluster, free_port
from servicekit.migrations import upgrade
from task_svc import ROLE, SCHEMA, SERVICE_DIR
from task_svc.graph.bootstrap import plan_graph
from task_svc.projects import service
from task_svc.projects.schemas import ProjectCreate
from task_svc.settings import Settings
from task_svc.tasks.models import Task

PASSWORD = "bench"  # a throwaway cluster of this run


def graph(size: int) -> dict[str, Any]:
    """A DAG like real templates: each node waits for the previous one and one 7 back."""
    nodes = [
        {
            "key": f"n{i}",
            "title": f"Step {i}",
            "description": "",
            "kind": "task",
            "work_kind": "qc" if i % 10 == 9 else "work",
            "priority": 50,
            "qc_required": i % 10 == 8,
            "qc_checklist": [{"code": "C1", "text": "ok", "required": True}] if i % 10 == 8 else [],
            "estimate_hours": 1 + i % 5,
            "due_offset_hours": 8 * i,
            "parent_key": None,
            "role_hint": None,
        }
        for i in range(size)
    ]
    edges = [
        {"blocker": f"n{i - back}", "dependent": f"n{i}"}
        for i in range(size)
        for back in (1, 7)
        if i - back >= 0
    ]
    return {"nodes": nodes, "edges": edges}


async def run(url: str, deliverables: int, nodes: int, rounds: int) -> None:
    engine = make_engine(url, schema=SCHEMA, application_name="bench-bootstrap")
    db = Database(engine)
    org = uuid.uuid4()
    principal = Principal(sub=str(uuid.uuid4()), org_id=org, roles=frozenset({"planner"}))
    g = graph(nodes)
    version = {
        "template_id": str(uuid.uuid4()),
        "org_id": str(org),
        "key": "bench",
        "name": "Bench",
        "version": 1,
        "status": "published",
        "checksum": "0" * 64,
        "published_at": None,
        **g,
    }
    settings = Settings()
    body = ProjectCreate(
        name="Bench",
        template_id=uuid.UUID(version["template_id"]),
        deliverables=deliverables,
        start_at=datetime(2026, 12, 1, tzinfo=UTC),
    )

    bulk: list[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        async with db.sessionmaker() as session:
            plan = plan_graph(g["nodes"], g["edges"])
            read = await service._bootstrap(
                session,
                principal=principal,
                body=body,
                names=body.deliverable_names(),
                version=version,
                plan=plan,
                settings=settings,
            )
            await session.commit()
        bulk.append(time.perf_counter() - t0)
    assert read.task_count == deliverables * nodes

    # The same tasks, one INSERT each (no dependencies or events: the cheaper half).
    single: list[float] = []
    for _ in range(max(1, rounds // 2)):
        async with db.sessionmaker() as session:
            read = await service._bootstrap(
                session,
                principal=principal,
                body=body.model_copy(update={"deliverables": 1}),
                names=["seed"],
                version={**version, "nodes": g["nodes"][:1], "edges": []},
                plan=plan_graph(g["nodes"][:1], []),
                settings=settings,
            )
            await session.commit()
        t0 = time.perf_counter()
        async with db.sessionmaker() as session:
            for d in range(deliverables):
                for i, node in enumerate(g["nodes"]):
                    await session.execute(
                        insert(Task).values(
                            id=uuid.uuid4(),
                            org_id=org,
                            project_id=read.id,
                            deliverable_id=read.deliverables[0].id,
                            node_key=f"{d}-{i}",
                            title=node["title"],
                            kind="task",
                            work_kind=node["work_kind"],
                            status="blocked",
                            open_blockers=1,
                        )
                    )
            await session.commit()
        single.append(time.perf_counter() - t0)
    await engine.dispose()

    tasks = deliverables * nodes
    b, s = statistics.median(bulk), statistics.median(single)
    print(
        f"project of {deliverables} deliverables x {nodes} nodes = {tasks} tasks, "
        f"{len(g['edges']) * deliverables} dependencies, {tasks} creation events"
    )
    print(
        f"bulk bootstrap (everything):         median {b * 1000:8.1f} ms  "
        f"({tasks / b:,.0f} tasks/s) over {rounds} rounds"
    )
    print(
        f"single-row INSERT loop (tasks only): median {s * 1000:8.1f} ms  "
        f"({tasks / s:,.0f} tasks/s)"
    )
    print(f"ratio: the bulk bootstrap takes {b / s:.2f} of the loop's time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--deliverables", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bp-bench-bootstrap-"))
    base.chmod(0o755)
    cluster = PostgresCluster(base, free_port(), name="bench")
    cluster.start()
    try:
        asyncio.run(provision(cluster.admin_dsn, "bench", [ServiceSchema(ROLE, SCHEMA, PASSWORD)]))
        url = f"postgresql+asyncpg://{ROLE}:{PASSWORD}@127.0.0.1:{cluster.port}/bench"
        upgrade(SERVICE_DIR, url)
        asyncio.run(run(url, args.deliverables, args.nodes, args.rounds))
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
