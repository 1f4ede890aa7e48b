"""Writes the Postman collection (v2.1) and its environment from this one readable script:

    uv run python tests/postman/build_collection.py

The story a new user follows, through the gateway: health; a template created, validated,
published; a project started; another moved to a new template version (plan, apply, a batch dry
run); tasks assigned, started, completed; the QC loop (claim, results, defect, reject, rework,
accept); sign-off; the quality report (JSON and XLSX); and the refusals a
client must handle (stale version, blocked task, missing payload field, replayed
client_event_id, another organisation's id); and a webhook subscriber's first session. Ids flow
between requests as collection variables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
COLLECTION = HERE / "blueprint.postman_collection.json"
ENVIRONMENT = HERE / "blueprint.postman_environment.json"
SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"

GRAPH = {
    "nodes": [
        {"key": "cut", "title": "Cut the panels"},
        {
            "key": "paint",
            "title": "Paint",
            "qc_required": True,
            "qc_checklist": [{"code": "PAINT-1", "text": "No runs or sags", "required": True}],
        },
        {"key": "pack", "title": "Pack"},
    ],
    "edges": [
        {"blocker": "cut", "dependent": "paint"},
        {"blocker": "paint", "dependent": "pack"},
    ],
}

# Polls a list until `found` (a JS expression over `body`) holds, re-running the same request
# up to 60 times 250 ms apart: events cross services asynchronously.
POLL = """const polls = Number(pm.collectionVariables.get("polls") || 0);
if (!({found}) && polls < 60) {{
  pm.collectionVariables.set("polls", polls + 1);
  postman.setNextRequest(pm.info.requestName);
  setTimeout(() => {{}}, 250);
}} else {{
  pm.collectionVariables.set("polls", 0);
  pm.test("{what}", () => pm.expect({found}).to.be.true);
}}"""


def request(
    name: str,
    method: str,
    path: str,
    *,
    role: str = "planner",
    body: Any = None,
    status: int = 200,
    tests: list[str] | None = None,
    headers: dict[str, str] | None = None,
    prerequest: list[str] | None = None,
    raw_body: str | None = None,
) -> dict[str, Any]:
    """One request with its assertions: the status first, then `tests` (JS lines), which see
    `body` (the parsed JSON answer, when there is one)."""
    script = [f'pm.test("status is {status}", () => pm.response.to.have.status({status}));']
    if tests:
        script.append(
            "const isJson = (pm.response.headers.get('Content-Type') || '').includes('json');"
        )
        script.append("const body = isJson ? pm.response.json() : null;")
        script.extend(tests)
    events = [{"listen": "test", "script": {"type": "text/javascript", "exec": script}}]
    if prerequest:
        events.append(
            {"listen": "prerequest", "script": {"type": "text/javascript", "exec": prerequest}}
        )
    req: dict[str, Any] = {
        "method": method,
        "header": [{"key": k, "value": v} for k, v in (headers or {}).items()],
        "url": {
            "raw": "{{base_url}}" + path,
            "host": ["{{base_url}}"],
            "path": [p for p in path.split("?")[0].split("/") if p],
        },
        "auth": {
            "type": "bearer",
            "bearer": [{"key": "token", "value": f"{{{{token_{role}}}}}", "type": "string"}],
        },
    }
    if "?" in path:
        query = path.split("?", 1)[1]
        req["url"]["query"] = [
            {"key": k, "value": v} for k, _, v in (p.partition("=") for p in query.split("&"))
        ]
    if body is not None or raw_body is not None:
        req["body"] = {
            "mode": "raw",
            "raw": raw_body if raw_body is not None else json.dumps(body, indent=2),
            "options": {"raw": {"language": "json"}},
        }
        if not any(k.lower() == "content-type" for k in headers or {}):
            req["header"].append({"key": "Content-Type", "value": "application/json"})
    return {"name": name, "event": events, "request": req}


def save(var: str, expr: str) -> str:
    return f'pm.collectionVariables.set("{var}", {expr});'


def check(what: str, expr: str) -> str:
    return f"pm.test({json.dumps(what)}, () => pm.expect({expr}).to.be.true);"


def problem(code: str) -> list[str]:
    return [
        check(
            "problem+json",
            "pm.response.headers.get('Content-Type').startsWith('application/problem+json')",
        ),
        check(f"code is {code}", f"body.code === '{code}'"),
    ]


def transition(
    name: str,
    task: str,
    action: str,
    *,
    payload: dict[str, Any] | None = None,
    role: str = "operator",
    status: int = 200,
    event_id: str | None = None,
    version: str | None = None,
    extra: list[str] | None = None,
) -> dict[str, Any]:
    body = {
        "action": action,
        "payload": payload or {},
        "expected_row_version": f"{{{{{version or 'rv_' + task}}}}}",
        "client_event_id": event_id or f"pm-{action}-{task}-{{{{run_id}}}}",
    }
    raw = json.dumps(body, indent=2).replace(
        f'"{{{{{version or "rv_" + task}}}}}"', f"{{{{{version or 'rv_' + task}}}}}"
    )
    tests = list(extra or [])
    if status == 200:
        tests += [
            check(f"action is {action}", f"body.action === '{action}'"),
            save(f"rv_{task}", "body.row_version"),
            check(
                "ETag is the new row_version",
                "pm.response.headers.get('ETag') === '\"' + body.row_version + '\"'",
            ),
        ]
    return request(
        name,
        "POST",
        f"/api/v1/tasks/{{{{task_{task}}}}}/transitions",
        role=role,
        raw_body=raw,
        status=status,
        tests=tests,
    )


def templates() -> list[dict[str, Any]]:
    tid = "{{template_id}}"
    return [
        request(
            "createTemplate: with a draft graph",
            "POST",
            "/api/v1/templates",
            status=201,
            raw_body=json.dumps(
                {"key": "pm-{{run_id}}", "name": "Cabinet (Postman)", "draft": GRAPH}, indent=2
            ),
            tests=[
                save("template_id", "body.id"),
                check("draft version 1", "body.draft_version === 1"),
                save("template_rv", "body.row_version"),
            ],
        ),
        request(
            "createTemplate: the same key again is refused",
            "POST",
            "/api/v1/templates",
            status=409,
            raw_body=json.dumps({"key": "pm-{{run_id}}", "name": "Again"}),
            tests=problem("TEMPLATE_KEY_TAKEN"),
        ),
        request(
            "validateTemplateGraph",
            "POST",
            "/api/v1/templates/validate",
            body=GRAPH,
            tests=[check("the graph is valid", "body.valid === true")],
        ),
        request(
            "listTemplates",
            "GET",
            "/api/v1/templates?limit=5",
            tests=[check("a page of items", "Array.isArray(body.items)")],
        ),
        request(
            "getTemplate",
            "GET",
            f"/api/v1/templates/{tid}",
            tests=[
                check("its key", "body.key === 'pm-' + pm.collectionVariables.get('run_id')"),
                save("template_rv", "body.row_version"),
            ],
        ),
        request(
            "updateTemplate",
            "PATCH",
            f"/api/v1/templates/{tid}",
            raw_body='{"name": "Cabinet (Postman, renamed)", '
            '"expected_row_version": {{template_rv}}}',
            tests=[
                check("renamed", "body.name.endsWith('renamed)')"),
                save("template_rv", "body.row_version"),
            ],
        ),
        request(
            "listTemplateVersions",
            "GET",
            f"/api/v1/templates/{tid}/versions",
            tests=[
                check("version 1 is a draft", "body.items[0].status === 'draft'"),
                save("version_rv", "body.items[0].row_version"),
            ],
        ),
        request(
            "getTemplateVersion",
            "GET",
            f"/api/v1/templates/{tid}/versions/1",
            tests=[check("three nodes", "body.nodes.length === 3")],
        ),
        request(
            "replaceTemplateVersion",
            "PUT",
            f"/api/v1/templates/{tid}/versions/1",
            raw_body=json.dumps({**GRAPH, "changelog": "first cut"})[:-1]
            + ', "expected_row_version": {{version_rv}}}',
            tests=[save("version_rv", "body.row_version")],
        ),
        request(
            "exportTemplateVersion",
            "GET",
            f"/api/v1/templates/{tid}/versions/1/export",
            tests=[
                check("a document with the graph", "body.nodes.length === 3"),
                save("version_document", "pm.response.text()"),
            ],
        ),
        request(
            "publishTemplateVersion",
            "POST",
            f"/api/v1/templates/{tid}/versions/1/publish",
            raw_body='{"expected_row_version": {{version_rv}}}',
            tests=[check("published", "body.status === 'published'")],
        ),
        request(
            "createTemplateVersion",
            "POST",
            f"/api/v1/templates/{tid}/versions",
            status=201,
            body={"clone_from": 1, "changelog": "second, cloned from 1"},
            tests=[check("version 2", "body.version === 2")],
        ),
        request(
            "importTemplateVersion",
            "POST",
            f"/api/v1/templates/{tid}/versions/import",
            status=201,
            raw_body="{{version_document}}",
            tests=[check("version 3", "body.version === 3")],
        ),
        request(
            "diffTemplateVersions",
            "GET",
            f"/api/v1/templates/{tid}/versions/1/diff/2",
            tests=[check("a diff", "typeof body === 'object'")],
        ),
    ]


def projects() -> list[dict[str, Any]]:
    pid = "{{project_id}}"
    start = {
        "name": "Order {{run_id}}",
        "template_id": "{{template_id}}",
        "template_version": 1,
        "start_at": "2026-12-01T08:00:00Z",
    }
    return [
        request(
            "createProject: one deliverable",
            "POST",
            "/api/v1/projects",
            status=201,
            body={**start, "deliverables": 1},
            tests=[
                save("project_id", "body.id"),
                save("project_rv", "body.row_version"),
                check("active", "body.status === 'active'"),
            ],
        ),
        request(
            "createProject: named deliverables (cancelled below)",
            "POST",
            "/api/v1/projects",
            status=201,
            body={**start, "deliverables": ["Left cabinet", "Right cabinet"]},
            tests=[
                save("spare_project_id", "body.id"),
                save("spare_project_rv", "body.row_version"),
            ],
        ),
        request(
            "listProjects",
            "GET",
            "/api/v1/projects?limit=5",
            tests=[check("a page of items", "Array.isArray(body.items)")],
        ),
        request(
            "getProject",
            "GET",
            f"/api/v1/projects/{pid}",
            tests=[check("pinned to version 1", "body.template.version === 1")],
        ),
        request(
            "getProjectDashboard",
            "GET",
            f"/api/v1/projects/{pid}/dashboard",
            tests=[check("has counts", "typeof body === 'object'")],
        ),
        request(
            "getProjectGraph",
            "GET",
            f"/api/v1/projects/{pid}/graph",
            tests=[check("has nodes", "typeof body === 'object'")],
        ),
        request(
            "holdProject",
            "POST",
            f"/api/v1/projects/{pid}/hold",
            raw_body='{"expected_row_version": {{project_rv}}, "reason": "parts late"}',
            tests=[
                check("on hold", "body.status === 'on_hold'"),
                save("project_rv", "body.row_version"),
            ],
        ),
        request(
            "resumeProject",
            "POST",
            f"/api/v1/projects/{pid}/resume",
            raw_body='{"expected_row_version": {{project_rv}}}',
            tests=[check("active again", "body.status === 'active'")],
        ),
        request(
            "cancelProject",
            "POST",
            "/api/v1/projects/{{spare_project_id}}/cancel",
            raw_body='{"expected_row_version": {{spare_project_rv}}, "reason": "dropped"}',
            tests=[check("cancelled", "body.status === 'cancelled'")],
        ),
    ]


# Version 4 of the template: a QC step between cut and paint.
GRAPH_V4 = {
    "nodes": [
        GRAPH["nodes"][0],
        {"key": "check-cut", "title": "Check the cut panels", "work_kind": "qc"},
        *GRAPH["nodes"][1:],
    ],
    "edges": [
        {"blocker": "cut", "dependent": "check-cut"},
        {"blocker": "check-cut", "dependent": "paint"},
        {"blocker": "paint", "dependent": "pack"},
    ],
}


def migrations() -> list[dict[str, Any]]:
    tid = "{{template_id}}"
    pid = "{{migrated_project_id}}"
    return [
        request(
            "createTemplateVersion: version 4 adds a QC step",
            "POST",
            f"/api/v1/templates/{tid}/versions",
            status=201,
            body={"graph": GRAPH_V4, "changelog": "check the cut panels"},
            tests=[check("version 4", "body.version === 4"), save("v4_rv", "body.row_version")],
        ),
        request(
            "publishTemplateVersion: version 4",
            "POST",
            f"/api/v1/templates/{tid}/versions/4/publish",
            raw_body='{"expected_row_version": {{v4_rv}}}',
            tests=[check("published", "body.status === 'published'")],
        ),
        request(
            "createProject: to move to version 4",
            "POST",
            "/api/v1/projects",
            status=201,
            body={
                "name": "Order {{run_id}} (migrated)",
                "template_id": "{{template_id}}",
                "template_version": 1,
                "start_at": "2026-12-01T08:00:00Z",
                "deliverables": 1,
            },
            tests=[
                save("migrated_project_id", "body.id"),
                save("migrated_project_rv", "body.row_version"),
            ],
        ),
        request(
            "createMigrationPlan",
            "POST",
            f"/api/v1/projects/{pid}/migration-plans",
            status=201,
            body={"to_version": 4, "rules": {"blocker_added_to_started": "keep"}},
            tests=[
                save("plan_id", "body.id"),
                check("check-cut is added", "body.graph.nodes_added[0] === 'check-cut'"),
                check("nothing blocks it", "body.blocking_conflicts.length === 0"),
            ],
        ),
        request(
            "getMigrationPlan",
            "GET",
            f"/api/v1/projects/{pid}/migration-plans/{{{{plan_id}}}}",
            tests=[check("open", "body.state === 'open'")],
        ),
        request(
            "applyMigrationPlan",
            "POST",
            f"/api/v1/projects/{pid}/migrations",
            status=201,
            raw_body='{"plan_id": "{{plan_id}}", "expected_row_version": {{migrated_project_rv}}}',
            tests=[
                check("on version 4", "body.to_version === 4"),
                save("migrated_project_rv", "body.project_row_version"),
            ],
        ),
        request(
            "applyMigrationPlan: a plan applies once",
            "POST",
            f"/api/v1/projects/{pid}/migrations",
            status=409,
            raw_body='{"plan_id": "{{plan_id}}", "expected_row_version": {{migrated_project_rv}}}',
            tests=problem("MIGRATION_PLAN_APPLIED"),
        ),
        request(
            "listProjectMigrations",
            "GET",
            f"/api/v1/projects/{pid}/migrations",
            tests=[check("one migration", "body.items.length === 1")],
        ),
        request(
            "createMigrationJob: a dry run over version 1",
            "POST",
            f"/api/v1/templates/{tid}/versions/4/migrations",
            status=202,
            body={"from_versions": [1], "dry_run": True},
            tests=[save("migration_job_id", "body.id")],
        ),
        request(
            "getMigrationJob",
            "GET",
            f"/api/v1/templates/{tid}/versions/4/migrations/{{{{migration_job_id}}}}",
            tests=[check("a dry run", "body.dry_run === true")],
        ),
    ]


def tasks() -> list[dict[str, Any]]:
    by_key = "Object.fromEntries(body.items.map(t => [t.node_key, t]))"
    return [
        request(
            "getTaskStateMachine",
            "GET",
            "/api/v1/tasks/fsm",
            tests=[check("lists the actions", "JSON.stringify(body).includes('assign')")],
        ),
        request(
            "listTasks: the project's tasks",
            "GET",
            "/api/v1/tasks?project_id={{project_id}}&limit=50",
            tests=[
                f"const tasks = {by_key};",
                check("three tasks", "body.items.length === 3"),
                *[save(f"task_{k}", f"tasks.{k}.id") for k in ("cut", "paint", "pack")],
                *[save(f"rv_{k}", f"tasks.{k}.row_version") for k in ("cut", "paint", "pack")],
                save("deliverable_id", "tasks.cut.deliverable_id"),
                check(
                    "cut is ready, paint blocked",
                    "tasks.cut.status === 'ready' && tasks.paint.status === 'blocked'",
                ),
            ],
        ),
        request(
            "getTask",
            "GET",
            "/api/v1/tasks/{{task_cut}}",
            tests=[check("offers assign", "body.allowed_actions.includes('assign')")],
        ),
        request(
            "getTask: another organisation's id answers 404",
            "GET",
            "/api/v1/tasks/{{task_cut}}",
            role="other_org",
            status=404,
            tests=problem("TASK_NOT_FOUND"),
        ),
        transition(
            "applyTaskTransition: assign without assign_to is refused",
            "cut",
            "assign",
            role="planner",
            status=422,
            extra=[
                *problem("PAYLOAD_INVALID"),
                check("names the field", "JSON.stringify(body).includes('assign_to')"),
            ],
        ),
        transition(
            "applyTaskTransition: assign cut to the operator",
            "cut",
            "assign",
            role="planner",
            payload={"assign_to": "{{operator_user_id}}"},
        ),
        transition(
            "applyTaskTransition: a stale row_version is refused",
            "cut",
            "start",
            status=409,
            version="stale_version",
            event_id="pm-stale-{{run_id}}",
            extra=[
                *problem("VERSION_CONFLICT"),
                check("tells the current version", "body.current_row_version >= 2"),
            ],
        ),
        transition(
            "applyTaskTransition: start cut",
            "cut",
            "start",
            extra=[check("in progress", "body.to_status === 'in_progress'")],
        ),
        request(
            "applyTaskTransition: the same client_event_id replays the answer",
            "POST",
            "/api/v1/tasks/{{task_cut}}/transitions",
            role="operator",
            raw_body='{"action": "start", "payload": {}, "expected_row_version": '
            '{{replay_version}}, "client_event_id": "pm-start-cut-{{run_id}}"}',
            prerequest=[
                'pm.collectionVariables.set("replay_version", '
                'Number(pm.collectionVariables.get("rv_cut")) - 1);'
            ],
            tests=[
                check(
                    "Idempotent-Replayed",
                    "pm.response.headers.get('Idempotent-Replayed') === 'true'",
                ),
                check("the first answer", "body.to_status === 'in_progress'"),
            ],
        ),
        transition(
            "applyTaskTransition: a blocked task cannot start",
            "paint",
            "start",
            status=409,
            event_id="pm-blocked-{{run_id}}",
            extra=problem("TASK_BLOCKED"),
        ),
        transition(
            "applyTaskTransition: complete cut",
            "cut",
            "complete",
            payload={"note": "all panels cut"},
            extra=[check("done (no QC)", "body.to_status === 'done'")],
        ),
        request(
            "listTaskEvents",
            "GET",
            "/api/v1/tasks/{{task_cut}}/events",
            tests=[
                check(
                    "assign, start, complete",
                    "body.items.map(e => e.action).join() === 'create,assign,start,complete'",
                )
            ],
        ),
        request(
            "getTask: paint becomes ready",
            "GET",
            "/api/v1/tasks/{{task_paint}}",
            tests=[
                POLL.format(found="body.status === 'ready'", what="paint is ready"),
                save("rv_paint", "body.row_version"),
            ],
        ),
        request(
            "applyTaskTransitionsBulk: assign paint",
            "POST",
            "/api/v1/tasks/transitions:bulk",
            status=207,
            raw_body='{"items": [{"task_id": "{{task_paint}}", "action": "assign", '
            '"payload": {"assign_to": "{{operator_user_id}}"}, '
            '"expected_row_version": {{rv_paint}}}]}',
            tests=[
                check("the item succeeded", "body.results[0].status === 200"),
                save("rv_paint", "body.results[0].body.row_version"),
            ],
        ),
        transition("applyTaskTransition: start paint", "paint", "start"),
        transition(
            "applyTaskTransition: complete paint (goes to QC)",
            "paint",
            "complete",
            extra=[check("in QC", "body.to_status === 'in_qc'")],
        ),
    ]


def inspection_command(
    name: str, method: str, what: str, body: str, status: int = 200, extra: list[str] | None = None
) -> dict[str, Any]:
    raw = (
        body.rstrip("}")
        + (", " if body.strip() != "{}" else "")
        + '"expected_row_version": {{inspection_rv}}, "client_event_id": "{{$guid}}"}'
    )
    tests = [save("inspection_rv", "body.row_version"), *(extra or [])]
    return request(
        name,
        method,
        f"/api/v1/inspections/{{{{inspection_id}}}}/{what}",
        role="inspector",
        raw_body=raw.replace("{,", "{"),
        status=status,
        tests=tests,
    )


def find_inspection(name: str, round_no: int) -> dict[str, Any]:
    pending = f"body.items.find(i => i.round === {round_no} && i.status === 'pending')"
    return request(
        name,
        "GET",
        "/api/v1/inspections?task_id={{task_paint}}",
        role="inspector",
        tests=[
            POLL.format(found=f"!!{pending}", what=f"round {round_no} pending"),
            f"const found = {pending};",
            "if (found) {",
            save("inspection_id", "found.id"),
            save("inspection_rv", "found.row_version"),
            "}",
        ],
    )


def quality_control() -> list[dict[str, Any]]:
    return [
        find_inspection("listInspections: round 1 waits for the inspector", 1),
        request(
            "getInspection",
            "GET",
            "/api/v1/inspections/{{inspection_id}}",
            role="inspector",
            tests=[check("its checklist", "body.checklist[0].code === 'PAINT-1'")],
        ),
        inspection_command(
            "claimInspection",
            "POST",
            "claim",
            "{}",
            extra=[check("claimed", "body.status === 'claimed'")],
        ),
        inspection_command(
            "recordInspectionResults: PAINT-1 fails",
            "PUT",
            "results",
            '{"results": [{"code": "PAINT-1", "result": "fail", "note": "runs on the left door"}]}',
        ),
        inspection_command(
            "addInspectionDefect: recorded by mistake",
            "POST",
            "defects",
            '{"code": "TYPO", "severity": "minor", "description": "wrong"}',
            status=201,
            extra=[save("defect_id", "body.defects[0].id")],
        ),
        request(
            "removeInspectionDefect",
            "DELETE",
            "/api/v1/inspections/{{inspection_id}}/defects/{{defect_id}}"
            "?expected_row_version={{inspection_rv}}&client_event_id={{$guid}}",
            role="inspector",
            tests=[
                save("inspection_rv", "body.row_version"),
                check("withdrawn", "body.defects.length === 0"),
            ],
        ),
        inspection_command(
            "addInspectionDefect",
            "POST",
            "defects",
            '{"code": "PAINT-RUN", "severity": "major", "description": "runs on the left door"}',
            status=201,
        ),
        inspection_command(
            "decideInspection: reject",
            "POST",
            "decision",
            '{"decision": "reject", "reason": "repaint the left door"}',
            extra=[check("rejected", "body.decision === 'reject'")],
        ),
        request(
            "getTask: paint goes to rework",
            "GET",
            "/api/v1/tasks/{{task_paint}}",
            tests=[
                POLL.format(found="body.status === 'rework'", what="paint in rework"),
                save("rv_paint", "body.row_version"),
            ],
        ),
        transition(
            "applyTaskTransition: rework paint (start)",
            "paint",
            "start",
            event_id="pm-start-again-paint-{{run_id}}",
        ),
        transition(
            "applyTaskTransition: complete the rework",
            "paint",
            "complete",
            event_id="pm-complete-again-paint-{{run_id}}",
        ),
        find_inspection("listInspections: round 2 waits for the inspector", 2),
        inspection_command("claimInspection: round 2", "POST", "claim", "{}"),
        inspection_command(
            "recordInspectionResults: PAINT-1 passes",
            "PUT",
            "results",
            '{"results": [{"code": "PAINT-1", "result": "pass"}]}',
        ),
        inspection_command(
            "decideInspection: accept",
            "POST",
            "decision",
            '{"decision": "accept"}',
            extra=[check("accepted", "body.decision === 'accept'")],
        ),
    ]


def finish() -> list[dict[str, Any]]:
    tid = "{{template_id}}"
    return [
        request(
            "getTask: pack becomes ready once paint is accepted",
            "GET",
            "/api/v1/tasks/{{task_pack}}",
            tests=[
                POLL.format(found="body.status === 'ready'", what="pack is ready"),
                save("rv_pack", "body.row_version"),
            ],
        ),
        transition("applyTaskTransition: start pack", "pack", "start"),
        transition("applyTaskTransition: complete pack", "pack", "complete"),
        request(
            "getDeliverable",
            "GET",
            "/api/v1/deliverables/{{deliverable_id}}",
            role="approver",
            tests=[
                POLL.format(
                    found="body.progress && body.task_counts.done === 3", what="every task done"
                ),
                save("deliverable_rv", "body.row_version"),
            ],
        ),
        request(
            "signOffDeliverable: approved",
            "POST",
            "/api/v1/deliverables/{{deliverable_id}}/signoff",
            role="approver",
            raw_body='{"decision": "approved", "comment": "all good", '
            '"expected_row_version": {{deliverable_rv}}}',
            tests=[check("signed off", "body.decision === 'approved'")],
        ),
        request(
            "getQualityReport",
            "GET",
            "/api/v1/qc/reports/quality?project_id={{project_id}}",
            tests=[check("a report", "typeof body === 'object'")],
        ),
        request(
            "getQualityReportXlsx",
            "GET",
            "/api/v1/qc/reports/quality.xlsx?project_id={{project_id}}",
            tests=[
                check(
                    "a workbook",
                    "pm.response.headers.get('Content-Type').includes('spreadsheetml')",
                )
            ],
        ),
        request(
            "listTemplateVersions: before deprecating",
            "GET",
            f"/api/v1/templates/{tid}/versions",
            tests=[
                "const v1 = body.items.find(v => v.version === 1);",
                save("version_rv", "v1.row_version"),
            ],
        ),
        request(
            "deprecateTemplateVersion",
            "POST",
            f"/api/v1/templates/{tid}/versions/1/deprecate",
            raw_body='{"expected_row_version": {{version_rv}}}',
            tests=[check("deprecated", "body.status === 'deprecated'")],
        ),
        request(
            "getTemplate: before archiving",
            "GET",
            f"/api/v1/templates/{tid}",
            tests=[save("template_rv", "body.row_version")],
        ),
        request(
            "archiveTemplate",
            "POST",
            f"/api/v1/templates/{tid}/archive",
            raw_body='{"expected_row_version": {{template_rv}}}',
            tests=[
                check("archived", "body.archived === true"),
                save("template_rv", "body.row_version"),
            ],
        ),
        request(
            "unarchiveTemplate",
            "POST",
            f"/api/v1/templates/{tid}/unarchive",
            raw_body='{"expected_row_version": {{template_rv}}}',
            tests=[check("back", "body.archived === false")],
        ),
    ]


def webhooks() -> list[dict[str, Any]]:
    """A subscriber's first session: the catalogue, an endpoint (its secret shown once), a test
    event whose delivery fails (nothing listens on port 9 here) and is replayed, a recovery of
    the window, a rotated secret, pausing, deleting; and the refusals (a private address, another
    organisation's endpoint)."""
    hook = "/api/v1/webhooks"
    endpoint = f"{hook}/endpoints/{{{{endpoint_id}}}}"
    failed = "body.status === 'failed' || body.status === 'dead'"
    return [
        request(
            "listWebhookEventTypes",
            "GET",
            f"{hook}/event-types",
            tests=[
                check(
                    "task.status_changed is offered with its schema",
                    "body.items.some(t => t.type === 'task.status_changed' && !!t.schema)",
                )
            ],
        ),
        request(
            "createWebhookEndpoint: every task event",
            "POST",
            f"{hook}/endpoints",
            status=201,
            body={
                "url": "http://127.0.0.1:9/hook",
                "description": "Postman {{run_id}}",
                "event_types": ["task.*"],
            },
            tests=[
                save("endpoint_id", "body.id"),
                save("endpoint_rv", "body.row_version"),
                check("the secret is shown once", "body.secret.startsWith('whsec_')"),
            ],
        ),
        request(
            "createWebhookEndpoint: a private address is refused",
            "POST",
            f"{hook}/endpoints",
            status=422,
            body={"url": "http://10.0.0.1/hook", "event_types": ["task.*"]},
            tests=problem("URL_NOT_ALLOWED"),
        ),
        request(
            "listWebhookEndpoints",
            "GET",
            f"{hook}/endpoints?limit=50",
            tests=[
                check(
                    "the new endpoint is listed",
                    "body.items.some(e => e.id === pm.collectionVariables.get('endpoint_id'))",
                )
            ],
        ),
        request(
            "getWebhookEndpoint",
            "GET",
            endpoint,
            tests=[check("no secret in a read", "body.secret === undefined")],
        ),
        request(
            "getWebhookEndpoint: another organisation's is not found",
            "GET",
            endpoint,
            role="other_org",
            status=404,
            tests=problem("ENDPOINT_NOT_FOUND"),
        ),
        request(
            "sendWebhookTest",
            "POST",
            f"{endpoint}/test",
            status=202,
            tests=[save("delivery_id", "body.id")],
        ),
        request(
            "getWebhookDelivery: poll until its first attempt failed",
            "GET",
            f"{hook}/deliveries/{{{{delivery_id}}}}",
            tests=[
                POLL.format(
                    found=f"({failed}) && body.history.length > 0",
                    what="the attempt is recorded",
                )
            ],
        ),
        request(
            "listWebhookDeliveries",
            "GET",
            f"{endpoint}/deliveries?event_type=webhook.test",
            tests=[check("the test delivery is listed", "body.items.length >= 1")],
        ),
        request(
            "replayWebhookDelivery",
            "POST",
            f"{hook}/deliveries/{{{{delivery_id}}}}/replay",
            status=202,
            tests=[check("due again now", "body.status !== 'dead'")],
        ),
        request(
            "recoverWebhookDeliveries: the last hour",
            "POST",
            f"{endpoint}/recover",
            status=202,
            prerequest=[
                "pm.collectionVariables.set('since', "
                "new Date(Date.now() - 3600 * 1000).toISOString());"
            ],
            raw_body='{"since": "{{since}}"}',
            tests=[save("recover_job_id", "body.id")],
        ),
        request(
            "getWebhookRecoverJob",
            "GET",
            f"{hook}/recover-jobs/{{{{recover_job_id}}}}",
            tests=[check("a known status", "['running', 'done'].includes(body.status)")],
        ),
        request(
            "rotateWebhookSecret",
            "POST",
            f"{endpoint}/rotate-secret",
            tests=[
                check("a new secret, once", "body.secret.startsWith('whsec_')"),
                save("endpoint_rv", "body.row_version"),
            ],
        ),
        request(
            "updateWebhookEndpoint: pause it",
            "PATCH",
            endpoint,
            raw_body='{"active": false, "expected_row_version": {{endpoint_rv}}}',
            tests=[check("paused", "body.active === false")],
        ),
        request("deleteWebhookEndpoint", "DELETE", endpoint, status=204),
    ]


def notifications() -> list[dict[str, Any]]:
    base = "/api/v1/notifications"
    contact = f"{base}/contacts/{{{{operator_user_id}}}}"
    mail = {"to": "ops-{{run_id}}@example.com", "subject": "Line 2 stops at 14:00",
            "body": "Maintenance on line 2 from 14:00 to 15:00."}  # fmt: skip
    return [
        request(
            "putNotificationContact: the operator sets their own address",
            "PUT",
            contact,
            role="operator",
            body={"email": "operator-{{run_id}}@example.com", "name": "Olga Operator"},
            tests=[check("the address", "body.email.startsWith('operator-')")],
        ),
        request("getNotificationContact", "GET", contact),
        request(
            "getNotificationContact: a user without a contact",
            "GET",
            f"{base}/contacts/00000000-0000-4000-8000-000000000000",
            status=404,
            tests=problem("CONTACT_NOT_FOUND"),
        ),
        request(
            "listNotificationRules: the defaults",
            "GET",
            f"{base}/rules",
            tests=[check("five rules", "body.items.length === 5")],
        ),
        request(
            "putNotificationRules: an unknown event type is refused",
            "PUT",
            f"{base}/rules",
            body={"rules": [{"event_type": "task.finished"}]},
            status=422,
            tests=problem("EVENT_TYPE_UNKNOWN"),
        ),
        request(
            "putNotificationRules: QC rejects to the assignee and the quality team",
            "PUT",
            f"{base}/rules",
            body={
                "rules": [
                    {
                        "event_type": "qc.inspection.failed",
                        "recipients": [
                            {"kind": "assignee"},
                            {"kind": "address", "address": "quality@example.com"},
                        ],
                    }
                ]
            },
        ),
        request("getNotificationSettings", "GET", f"{base}/settings"),
        request(
            "putNotificationSettings: remind an hour ahead",
            "PUT",
            f"{base}/settings",
            body={"reminder_lead_minutes": 60, "approvers_email": "approvers@example.com"},
        ),
        request(
            "sendNotificationEmail: an invalid address is refused",
            "POST",
            f"{base}/email",
            body={**mail, "to": "ops@"},
            status=422,
            tests=problem("VALIDATION_FAILED"),
        ),
        request(
            "sendNotificationEmail",
            "POST",
            f"{base}/email",
            body=mail,
            headers={"Idempotency-Key": "pm-mail-{{run_id}}"},
            status=202,
            tests=[save("job_id", "body.job_id")],
        ),
        request(
            "getNotificationJob: wait until sent",
            "GET",
            f"{base}/jobs/{{{{job_id}}}}",
            tests=[POLL.format(found="body.status === 'sent'", what="the mail is sent")],
        ),
        request("listNotificationJobs: the sent ones", "GET", f"{base}/jobs?status=sent&limit=5"),
        request(
            "retryNotificationJob: a sent job is not retried",
            "POST",
            f"{base}/jobs/{{{{job_id}}}}/retry",
            status=409,
            tests=problem("JOB_NOT_RETRYABLE"),
        ),
        request(
            "newNotificationWebhookSecret: shown once",
            "POST",
            f"{base}/settings/webhook-secret",
            tests=[check("a secret", "body.secret.startsWith('whsec_')")],
        ),
        request(
            "sendNotificationWebhook: a private address is refused",
            "POST",
            f"{base}/webhook",
            body={"url": "http://10.0.0.1/hook", "payload": {"line": 2}},
            status=422,
            tests=problem("URL_NOT_ALLOWED"),
        ),
    ]


def health() -> list[dict[str, Any]]:
    return [
        request(
            "gateway health", "GET", "/health", tests=[check("ok", "pm.response.code === 200")]
        ),
    ]


def collection() -> dict[str, Any]:
    return {
        "info": {
            "_postman_id": "8a4d2c1e-5b6f-4a7d-9e8c-0f1a2b3c4d5e",
            "name": "Blueprint API: the whole story",
            "description": "Generated by tests/postman/build_collection.py; run it with "
            "`make newman`. Each iteration uses its own template key (run_id).",
            "schema": SCHEMA,
        },
        "event": [
            {
                "listen": "prerequest",
                "script": {
                    "type": "text/javascript",
                    "exec": [
                        "if (!pm.collectionVariables.get('run_id')) {",
                        "  pm.collectionVariables.set('run_id', Date.now().toString(36) + "
                        "Math.random().toString(36).slice(2, 8));",
                        "}",
                    ],
                },
            }
        ],
        "item": [
            {"name": "health", "item": health()},
            {"name": "templates", "item": templates()},
            {"name": "projects", "item": projects()},
            {"name": "migrations", "item": migrations()},
            {"name": "tasks", "item": tasks()},
            {"name": "quality control", "item": quality_control()},
            {"name": "sign-off, reports, template life cycle", "item": finish()},
            {"name": "webhooks", "item": webhooks()},
            {"name": "notifications", "item": notifications()},
            {
                "name": "end of iteration",
                "item": [
                    request(
                        "listTemplates: end of iteration",
                        "GET",
                        "/api/v1/templates?limit=1",
                        tests=["pm.collectionVariables.unset('run_id');"],
                    )
                ],
            },
        ],
        "variable": [{"key": "stale_version", "value": "1"}, {"key": "polls", "value": "0"}],
    }


def environment() -> dict[str, Any]:
    keys = [
        "base_url",
        "token_planner",
        "token_operator",
        "token_inspector",
        "token_approver",
        "token_other_org",
        "operator_user_id",
    ]
    return {
        "id": "3c2b1a09-8f7e-4d6c-b5a4-9382716f5e4d",
        "name": "Blueprint local (make run)",
        "values": [
            {
                "key": k,
                "value": "http://localhost:8080" if k == "base_url" else "",
                "type": "secret" if k.startswith("token") else "default",
                "enabled": True,
            }
            for k in keys
        ],
        "_postman_variable_scope": "environment",
    }


def main() -> None:
    COLLECTION.write_text(json.dumps(collection(), indent=2) + "\n")
    ENVIRONMENT.write_text(json.dumps(environment(), indent=2) + "\n")


if __name__ == "__main__":
    main()
