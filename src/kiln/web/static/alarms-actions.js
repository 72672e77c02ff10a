// What each alarm button does: ask what the action needs (a note, a duration, a reason) in a
// modal dialog, send it, and say in one line what happened. The server decides; a refusal's
// detail (e.g. "a note is required to acknowledge critical alarms") is shown as it comes.

import { SHELVE_CHOICES } from "./alarms-model.js";
import { ask } from "./alarms-dialog.js";

const NOTE = { name: "note", label: "Note (some priorities require one)", kind: "note" };

/** Acknowledge `alarms` with one note: resolves to the message to show, or null if cancelled. */
export async function acknowledge(api, alarms) {
  const one = alarms.length === 1;
  const values = await ask({
    title: one ? "Acknowledge the alarm" : `Acknowledge ${alarms.length} alarms`,
    intro: one ? alarms[0].message || alarms[0].id : alarms.map((a) => a.id).slice(0, 5).join(", ") + (alarms.length > 5 ? ", …" : ""),
    fields: [NOTE],
    submit: "Acknowledge",
  });
  if (values === null) return null;
  const body = await api.ack(
    alarms.map((a) => a.id),
    values.note,
  );
  const results = Array.isArray(body?.results) ? body.results : [];
  const failed = results.filter((r) => !r.ok);
  const done = results.length - failed.length;
  if (failed.length === 0) return { text: `Acknowledged ${plural(done, "alarm")}.`, kind: "ok" };
  const reasons = failed.map((r) => `${r.id}: ${r.error ?? "refused"}`).join("; ");
  return { text: `Acknowledged ${done} of ${results.length}. Refused: ${reasons}`, kind: "error" };
}

/** Run the row action `action` on `alarm`; resolves to {text, kind} or null when cancelled. */
export async function rowAction(api, action, alarm) {
  switch (action) {
    case "ack":
      return acknowledge(api, [alarm]);
    case "shelve": {
      const values = await ask({
        title: "Shelve the alarm",
        intro: `${alarm.id}: a shelved alarm is still evaluated and journaled, but not announced.`,
        fields: [
          {
            name: "duration",
            label: "For how long",
            kind: "choice",
            choices: SHELVE_CHOICES.map((c) => ({ value: c.key, label: c.label })),
            value: "1h",
          },
          { ...NOTE, label: "Note" },
        ],
        submit: "Shelve",
      });
      if (values === null) return null;
      const choice = SHELVE_CHOICES.find((c) => c.key === values.duration) ?? SHELVE_CHOICES[1];
      await api.shelve(alarm.id, { seconds: choice.seconds, oneShot: choice.oneShot, note: values.note });
      return { text: `Shelved ${alarm.id} (${choice.label}).`, kind: "ok" };
    }
    case "unshelve": {
      const values = await ask({ title: "Unshelve the alarm", intro: alarm.id, fields: [{ ...NOTE, label: "Note" }], submit: "Unshelve" });
      if (values === null) return null;
      await api.unshelve(alarm.id, values.note);
      return { text: `Unshelved ${alarm.id}.`, kind: "ok" };
    }
    case "out-of-service": {
      const values = await ask({
        title: "Take the alarm out of service",
        intro: `${alarm.id}: for maintenance or a faulty instrument; it stays journaled, not announced.`,
        fields: [{ name: "reason", label: "Reason", kind: "note", required: true }],
        submit: "Out of service",
        check: (v) => (v.reason ? "" : "Say why the alarm goes out of service."),
      });
      if (values === null) return null;
      await api.outOfService(alarm.id, true, values.reason);
      return { text: `${alarm.id} is out of service.`, kind: "ok" };
    }
    case "in-service": {
      const values = await ask({ title: "Return the alarm to service", intro: alarm.id, fields: [{ name: "reason", label: "Note", kind: "note" }], submit: "Return to service" });
      if (values === null) return null;
      await api.outOfService(alarm.id, false, values.reason);
      return { text: `${alarm.id} is back in service.`, kind: "ok" };
    }
    case "reset": {
      const values = await ask({ title: "Reset the latched alarm", intro: alarm.id, fields: [{ ...NOTE, label: "Note" }], submit: "Reset" });
      if (values === null) return null;
      await api.reset(alarm.id, values.note);
      return { text: `Reset ${alarm.id}.`, kind: "ok" };
    }
    case "comment": {
      const values = await ask({
        title: "Comment on the alarm",
        intro: alarm.id,
        fields: [{ name: "comment", label: "Comment", kind: "note", required: true }],
        submit: "Add the comment",
        check: (v) => (v.comment ? "" : "Write the comment first."),
      });
      if (values === null) return null;
      await api.comment(alarm.id, values.comment);
      return { text: `Comment added to ${alarm.id}.`, kind: "ok" };
    }
    default:
      return { text: `Unknown action ${action}`, kind: "error" };
  }
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
