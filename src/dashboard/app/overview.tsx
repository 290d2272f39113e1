import type { ListEntry, MeshOverview } from "../wire.ts";

function EntryTable({
  title,
  entries,
  empty,
}: {
  title: string;
  entries: readonly ListEntry[];
  empty: string;
}) {
  return (
    <section class="card">
      <h3>{title}</h3>
      {entries.length === 0 ? (
        <p class="muted">{empty}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>entry</th>
              <th>from</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={`${e.value} ${e.from}`} data-testid="entry">
                <td class="mono">{e.value}</td>
                <td>{e.from}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function Overview({ overview }: { overview: MeshOverview }) {
  return (
    <div class="view">
      {overview.error && <p class="error">{overview.error}</p>}
      <div class="tiles">
        <div class="tile">
          <span class="label">egress</span>
          <span class={`value ${overview.enableEgress ? "ok" : "bad"}`} data-testid="egress">
            {overview.enableEgress ? "enabled" : "disabled"}
          </span>
          <span class="muted">MeshConfig spec.traffic.enableEgress</span>
        </div>
        <div class="tile">
          <span class="label">meshed pods</span>
          <span class="value" data-testid="meshed-count">
            {overview.meshedPods}
          </span>
        </div>
        <div class="tile">
          <span class="label">STALE pods</span>
          <span class={`value ${overview.stalePods > 0 ? "bad" : "ok"}`} data-testid="stale-count">
            {overview.stalePods}
          </span>
        </div>
        <div class="tile">
          <span class="label">control plane</span>
          {overview.controlPlane.length === 0 && <span class="value bad">not installed</span>}
          {overview.controlPlane.map((d) => (
            <span key={d.name} class={d.ready ? "ok" : "bad"}>
              {d.name}: {d.text}
            </span>
          ))}
        </div>
      </div>
      <EntryTable
        title="Outbound IP range exclusions (go direct, never intercepted)"
        entries={overview.exclusions}
        empty="none"
      />
      <EntryTable
        title="Outbound IP range inclusions (only these are intercepted)"
        entries={overview.inclusions}
        empty="none: every destination is intercepted"
      />
      <EntryTable title="Outbound port exclusions" entries={overview.portExclusions} empty="none" />
      <section class="card">
        <h3>Warnings</h3>
        {overview.warnings.length === 0 ? (
          <p class="muted">none</p>
        ) : (
          <ul>
            {overview.warnings.map((w) => (
              <li key={w} class="warning" data-testid="warning">
                {w}
              </li>
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}
