import type { PodRow } from "../wire.ts";

export function Pods({ pods }: { pods: readonly PodRow[] }) {
  if (pods.length === 0) return <p class="muted view">No meshed pods.</p>;
  const restarts = [...new Set(pods.filter((p) => p.restart).map((p) => p.restart ?? ""))];
  return (
    <div class="view">
      <table class="card">
        <thead>
          <tr>
            <th>namespace</th>
            <th>pod</th>
            <th>sidecar</th>
            <th>backend</th>
            <th>interception</th>
            <th>difference</th>
            <th>access log</th>
          </tr>
        </thead>
        <tbody>
          {pods.map((p) => (
            <tr key={`${p.namespace}/${p.pod}`} data-pod={`${p.namespace}/${p.pod}`}>
              <td>{p.namespace}</td>
              <td class="mono">{p.pod}</td>
              <td class={p.sidecarReady ? "ok" : "bad"}>{p.sidecarReady ? "ready" : "not ready"}</td>
              <td>{p.backend}</td>
              <td data-testid="interception">
                <span class={`badge ${p.state}`}>{p.interception}</span>
              </td>
              <td class="mono">{p.state === "current" ? "-" : p.difference.join(" ")}</td>
              <td class={p.logsDecisions ? "" : "muted"}>
                {p.logsDecisions ? "on" : "off (--access-log off)"}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {restarts.length > 0 && (
        <section class="card">
          <h3>Restart to apply the current policy</h3>
          <p class="muted">Interception is programmed when a pod starts (unless live updates are on).</p>
          {restarts.map((r) => (
            <pre key={r} data-testid="restart">
              {r}
            </pre>
          ))}
        </section>
      )}
    </div>
  );
}
