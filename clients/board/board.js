// The live project board: projects, then one project's tasks as columns by status. Buttons are
// only the `allowed_actions` the API returns for this user; a refusal shows the problem's detail.
// An inspector also gets the QC round of a task in QC: claim it, then accept (every checklist
// item passed) or reject with a reason (recorded as a defect when there is no finding yet).
import { all, api, forgetToken, Refused, roles, saveToken, token, userId } from "./api.js";
import { follow } from "./live.js";

const COLUMNS = ["blocked", "ready", "in_progress", "in_qc", "rework", "done"];
const SHOWN_IN = { on_hold: "in_progress" };
const NEEDS_REASON = new Set(["pause", "cancel", "reopen", "restore"]);
const $ = (id) => document.getElementById(id);
const state = { project: null, tasks: new Map(), inspections: new Map(), stop: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") node.addEventListener("click", v);
    else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function show(section) {
  for (const id of ["login", "projects", "project"]) $(id).hidden = id !== section;
}

function fail(err) {
  $("error").hidden = false;
  $("error").textContent = err instanceof Refused
    ? `${err.problem.code || err.status}: ${err.message}` : String(err.message || err);
  if (err instanceof Refused && err.status === 401) { forgetToken(); route(); }
}

async function listProjects() {
  show("projects");
  const items = await all("/api/v1/projects");
  $("project-list").replaceChildren(...items.map((p) => el("li", {},
    el("a", { href: `#/projects/${p.id}` }, p.name), ` (${p.status})`)));
}

async function refreshTask(id) {
  const task = await api("GET", `/api/v1/tasks/${id}`);
  state.tasks.set(id, task);
  return task;
}

async function loadProject(id) {
  show("project");
  state.project = await api("GET", `/api/v1/projects/${id}`);
  $("project-title").textContent = `${state.project.name} (${state.project.status})`;
  const items = await all(`/api/v1/tasks?project_id=${id}`);
  state.tasks = new Map(items.map((t) => [t.id, t]));
  const open = items.filter((t) => !["done", "cancelled"].includes(t.status));
  for (let i = 0; i < open.length; i += 6) {
    await Promise.all(open.slice(i, i + 6).map((t) => refreshTask(t.id)));
  }
  if (inspects()) {
    const found = await all(`/api/v1/inspections?project_id=${id}`);
    found.sort((a, b) => a.round - b.round);  // the newest round of a task wins
    state.inspections = new Map(found.map((i) => [i.task_id, i]));
  }
  render();
}

function inspects() {
  return roles().some((r) => r === "inspector" || r === "admin");
}

async function refreshInspection(taskId) {
  const found = await all(`/api/v1/inspections?task_id=${taskId}`);
  found.sort((a, b) => a.round - b.round);
  if (found.length) state.inspections.set(taskId, found[found.length - 1]);
}

function qcButtons(task, inspection) {
  if (!inspects() || !inspection || task.status !== "in_qc") return [];
  const button = (what, run) => el("button", {
    type: "button", "data-qc": what, "aria-label": `${what} QC of ${task.title}`,
    onclick: () => inspect(task, inspection, run),
  }, `QC ${what}`);
  if (inspection.status === "pending") return [button("claim", claim)];
  if (inspection.status === "claimed" && inspection.inspector_id === userId()) {
    return [button("accept", accept), button("reject", reject)];
  }
  return [];
}

async function qcCommand(inspection, what, body, method = "POST") {
  const current = await api("GET", `/api/v1/inspections/${inspection.id}`);
  return api(method, `/api/v1/inspections/${inspection.id}/${what}`, {
    ...body, expected_row_version: current.row_version, client_event_id: crypto.randomUUID(),
  });
}

const claim = (inspection) => qcCommand(inspection, "claim", {});

async function accept(inspection) {
  const current = await api("GET", `/api/v1/inspections/${inspection.id}`);
  const open = current.checklist.filter((item) => item.result !== "pass");
  if (open.length) {
    await qcCommand(inspection, "results",
      { results: open.map((item) => ({ code: item.code, result: "pass" })) }, "PUT");
  }
  return qcCommand(inspection, "decision", { decision: "accept" });
}

async function reject(inspection, task) {
  const reason = prompt(`Why reject "${task.title}"?`);
  if (!reason) return null;
  // A reject stands on a finding: without a failed item or a defect yet, the reason is
  // recorded as a major defect first.
  const current = await api("GET", `/api/v1/inspections/${inspection.id}`);
  if (!current.defects.length && !current.checklist.some((item) => item.result === "fail")) {
    await qcCommand(inspection, "defects",
      { code: "QC-REJECT", severity: "major", description: reason });
  }
  return qcCommand(inspection, "decision", { decision: "reject", reason });
}

async function inspect(task, inspection, run) {
  $("error").hidden = true;
  try {
    await run(inspection, task);
    await refreshInspection(task.id);
    await refreshTask(task.id);
  } catch (err) {
    fail(err);
  }
  render();
}

function progress() {
  const per = new Map();
  for (const t of state.tasks.values()) {
    const p = per.get(t.deliverable_id) || { done: 0, total: 0 };
    p.total += 1;
    if (t.status === "done" || t.status === "cancelled") p.done += 1;
    per.set(t.deliverable_id, p);
  }
  return state.project.deliverables.map((d) => {
    const p = per.get(d.id) || { done: 0, total: 0 };
    return `${d.serial}: ${p.done}/${p.total} done`;
  }).join(" · ");
}

function card(task) {
  const blockers = (task.blockers || []).filter((b) => !["done", "cancelled"].includes(b.status));
  const inspection = state.inspections.get(task.id);
  const actions = (task.allowed_actions || []).map((action) => el("button", {
    type: "button", "data-action": action, "aria-label": `${action} ${task.title}`,
    onclick: () => act(task, action),
  }, action)).concat(qcButtons(task, inspection));
  return el("article", { class: "card", "data-task": task.id, "data-node": task.node_key },
    el("h4", {}, task.title),
    el("p", {}, `${task.node_key}${task.status === "on_hold" ? " · on hold" : ""}`),
    el("p", {}, `assignee: ${task.assigned_to ? task.assigned_to.slice(0, 8) : "nobody"}`),
    task.due_at ? el("p", {}, `due ${task.due_at.slice(0, 10)}`) : null,
    blockers.length ? el("p", {}, `waiting for: ${blockers.map((b) => b.title).join(", ")}`)
      : null,
    inspection ? el("p", {}, `QC round ${inspection.round}: ${inspection.status}`) : null,
    actions.length ? el("div", { class: "actions" }, ...actions) : null);
}

function render() {
  $("progress").textContent = progress();
  const columns = COLUMNS.map((status) => {
    const tasks = [...state.tasks.values()]
      .filter((t) => (SHOWN_IN[t.status] || t.status) === status)
      .sort((a, b) => a.node_key.localeCompare(b.node_key));
    return el("section", { class: "column", "data-status": status,
                           "aria-label": status.replace("_", " ") },
      el("h3", {}, `${status.replace("_", " ")} (${tasks.length})`), ...tasks.map(card));
  });
  $("columns").replaceChildren(...columns);
}

function askAssignee() {
  return new Promise((resolve) => {
    const dialog = $("assign-dialog");
    $("assign-cancel").onclick = () => { dialog.close(); resolve(null); };
    dialog.onclose = () => resolve(dialog.returnValue === "ok" ? $("assign-to").value : null);
    dialog.showModal();
  });
}

async function act(task, action) {
  $("error").hidden = true;
  const payload = {};
  if (action === "assign") {
    const who = await askAssignee();
    if (!who) return;
    payload.assign_to = who;
  } else if (NEEDS_REASON.has(action)) {
    const reason = prompt(`Why ${action} "${task.title}"?`);
    if (!reason) return;
    payload.reason = reason;
  }
  try {
    const current = await refreshTask(task.id);
    await api("POST", `/api/v1/tasks/${task.id}/transitions`, {
      action, expected_row_version: current.row_version, client_event_id: crypto.randomUUID(),
      ...(Object.keys(payload).length ? { payload } : {}),
    });
    await refreshTask(task.id);
  } catch (err) {
    fail(err);
  }
  render();
}

async function onEvent(type, event) {
  const data = event.data || {};
  if (type.startsWith("qc.inspection.") && data.task_id && inspects()) {
    await refreshInspection(data.task_id);
  }
  if (data.task_id && state.tasks.has(data.task_id)) await refreshTask(data.task_id);
  if (type.startsWith("project.")) {
    state.project = await api("GET", `/api/v1/projects/${state.project.id}`);
  }
  render();
}

async function route() {
  if (state.stop) { state.stop(); state.stop = null; }
  if (!token()) { show("login"); return; }
  const match = location.hash.match(/^#\/projects\/([0-9a-f-]{36})$/);
  try {
    if (!match) { await listProjects(); return; }
    await loadProject(match[1]);
    state.stop = follow(match[1], {
      onEvent: (type, event) => onEvent(type, event).catch(fail),
      onReset: () => loadProject(match[1]).catch(fail),
      onState: (s) => { $("live").textContent = s; document.body.dataset.live = s; },
    });
  } catch (err) {
    fail(err);
  }
}

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  saveToken($("token").value);
  route();
});
window.addEventListener("hashchange", route);
route();
