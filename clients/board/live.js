// The project's live stream in a browser: EventSource with a single-use ticket; after a drop a
// new ticket and `last_event_id`, so nothing is missed.
import { api } from "./api.js";

const TYPES = [
  "task.status_changed", "task.unblocked", "task.assigned", "task.submitted_for_qc",
  "deliverable.ready_for_signoff", "deliverable.signed_off", "project.status_changed",
  "project.completed", "qc.inspection.created", "qc.inspection.passed", "qc.inspection.failed",
  "qc.inspection.reopened",
];

export function follow(projectId, { onEvent, onReset, onState }) {
  let last = null;
  let source = null;
  let stopped = false;

  async function open() {
    if (stopped) return;
    try {
      const { url } = await api("POST", `/api/v1/projects/${projectId}/stream-tickets`);
      source = new EventSource(last ? `${url}&last_event_id=${encodeURIComponent(last)}` : url);
    } catch (err) {
      onState(`offline: ${err.message}`);
      setTimeout(open, 3000);
      return;
    }
    // `ready` comes on a fresh stream only: reload once, so that nothing between the board's
    // first load and the stream's start is missed.
    for (const kind of ["ready", "reset"]) {
      source.addEventListener(kind, async (e) => {
        last = e.lastEventId;
        await onReset();
        onState("live");
      });
    }
    for (const type of TYPES) {
      source.addEventListener(type, (e) => {
        last = e.lastEventId;
        onEvent(type, JSON.parse(e.data));
      });
    }
    source.onerror = () => {
      // A ticket opens one connection only: the browser's own retry would be refused.
      source.close();
      onState("reconnecting");
      setTimeout(open, 1000);
    };
  }

  open();
  return () => { stopped = true; if (source) source.close(); };
}
