import type { PodRow } from "../wire.ts";

/** A `<select name="pod">` of the meshed pods (`namespace/name`), with an optional first choice ("all"). */
export function PodSelect(props: {
  pods: readonly PodRow[];
  value: string;
  onChange: (value: string) => void;
  all?: string;
}) {
  return (
    <label>
      pod{" "}
      <select
        name="pod"
        value={props.value}
        onChange={(e) => props.onChange((e.target as HTMLSelectElement).value)}
      >
        {props.all !== undefined && <option value="">{props.all}</option>}
        {props.pods.map((p) => (
          <option key={`${p.namespace}/${p.pod}`} value={`${p.namespace}/${p.pod}`}>
            {p.namespace}/{p.pod}
          </option>
        ))}
      </select>
    </label>
  );
}
