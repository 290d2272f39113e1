import { useState } from "preact/hooks";
import type { DecisionEvent, PodRow } from "../wire.ts";
import { PodSelect } from "./pod-select.tsx";

const VERDICTS = ["proxied", "passthrough", "refused"] as const;

export function Live({ decisions, pods }: { decisions: readonly DecisionEvent[]; pods: readonly PodRow[] }) {
  const [pod, setPod] = useState("");
  const [verdict, setVerdict] = useState("");
  const shown = decisions
    .filter(
      (d) => (pod === "" || `${d.namespace}/${d.pod}` === pod) && (verdict === "" || d.verdict === verdict),
    )
    .slice(-200)
    .reverse();
  const silent = pods.filter((p) => !p.logsDecisions);
  return (
    <div class="view">
      {silent.length > 0 && (
        <p class="card warning" data-testid="silent-sidecars">
          {silent.length} sidecar(s) run with --access-log off, so their decisions cannot show here (
          {silent.map((p) => `${p.namespace}/${p.pod}`).join(", ")})
        </p>
      )}
      <div class="card row">
        <PodSelect pods={pods} value={pod} onChange={setPod} all="all" />
        <label>
          verdict{" "}
          <select
            name="verdict"
            value={verdict}
            onChange={(e) => setVerdict((e.target as HTMLSelectElement).value)}
          >
            <option value="">all</option>
            {VERDICTS.map((v) => (
              <option key={v} value={v}>
                {v}
              </option>
            ))}
          </select>
        </label>
        <span class="muted">
          the sidecars' decisions, newest first ({shown.length} of {decisions.length}); connections to
          excluded destinations never reach a sidecar
        </span>
      </div>
      <table class="card">
        <thead>
          <tr>
            <th>time</th>
            <th>pod</th>
            <th>direction</th>
            <th>destination</th>
            <th>verdict</th>
            <th>why</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((d) => (
            <tr
              key={d.seq}
              data-testid="decision"
              data-verdict={d.verdict}
              data-destination={d.destination}
              data-time={d.time}
            >
              <td class="mono">{d.time.slice(11, 23)}</td>
              <td class="mono">
                {d.namespace}/{d.pod}
              </td>
              <td>{d.direction}</td>
              <td class="mono">{d.destination}</td>
              <td>
                <span class={`badge verdict-${d.verdict}`}>{d.verdict}</span>
              </td>
              <td>
                {d.because}
                {d.error && <span class="muted"> ({d.error})</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
