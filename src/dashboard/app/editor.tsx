import { useState } from "preact/hooks";
import type { MeshConfigAnswer } from "../wire.ts";
import { postJson } from "./feed.ts";

/** The traffic section as the editor shows it (JSON is YAML; either may be typed). */
export const trafficText = (traffic: Readonly<Record<string, unknown>>): string =>
  JSON.stringify(traffic, null, 2);

export function Editor({
  traffic,
  meshConfig,
}: {
  traffic: Readonly<Record<string, unknown>>;
  meshConfig: string;
}) {
  const [text, setText] = useState<string | undefined>(undefined);
  const [answer, setAnswer] = useState<MeshConfigAnswer | undefined>(undefined);
  /** The text the last answer is about: Save is offered only for a text the dry run accepted. */
  const [checked, setChecked] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const current = text ?? trafficText(traffic);
  const send = async (dryRun: boolean) => {
    setBusy(true);
    try {
      const r = await postJson<MeshConfigAnswer>("/api/meshconfig", { traffic: current, dryRun });
      setAnswer(r.body);
      setChecked(current);
      // Saved: show what the server now stores (the watch brings it).
      if (!dryRun && r.body.ok) setText(undefined);
    } finally {
      setBusy(false);
    }
  };
  const canSave = answer?.ok === true && answer.dryRun && checked === current && !busy;
  return (
    <div class="view">
      <section class="card">
        <h3>{meshConfig}: spec.traffic</h3>
        <textarea
          name="traffic"
          rows={16}
          spellcheck={false}
          value={current}
          onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
        />
        <div class="row">
          <button type="button" disabled={busy} onClick={() => send(true)}>
            Check (server dry run)
          </button>
          <button type="button" disabled={!canSave} onClick={() => send(false)}>
            Save
          </button>
          <button type="button" disabled={busy || text === undefined} onClick={() => setText(undefined)}>
            Revert
          </button>
          {text !== undefined && (
            <span class="muted">edited (the stored value updates live above until you edit)</span>
          )}
        </div>
      </section>
      {answer && (
        <section
          class={`card ${answer.ok ? "" : "error"}`}
          data-testid="meshconfig-answer"
          data-ok={String(answer.ok)}
        >
          <h3>
            {answer.ok
              ? answer.dryRun
                ? "The server would accept this (nothing saved yet)"
                : "Saved"
              : `Refused by the server: nothing saved`}
          </h3>
          {answer.message && answer.problems.length === 0 && <p>{answer.message}</p>}
          {answer.problems.length > 0 && (
            <table>
              <thead>
                <tr>
                  <th>field</th>
                  <th>value</th>
                  <th>problem</th>
                  <th>hint</th>
                </tr>
              </thead>
              <tbody>
                {answer.problems.map((p) => (
                  <tr key={`${p.field} ${p.value}`} data-testid="problem">
                    <td class="mono" data-testid="problem-field">
                      {p.field}
                    </td>
                    <td class="mono" data-testid="problem-value">
                      {p.value}
                    </td>
                    <td>{p.reason}</td>
                    <td data-testid="problem-hint">{p.hint ?? ""}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {answer.warnings.length > 0 && (
            <ul>
              {answer.warnings.map((w) => (
                <li key={w} class="warning" data-testid="answer-warning">
                  {w}
                </li>
              ))}
            </ul>
          )}
        </section>
      )}
    </div>
  );
}
