import { useState } from "preact/hooks";
import type { ExplainAnswer, PodRow } from "../wire.ts";
import { postJson } from "./feed.ts";
import { PodSelect } from "./pod-select.tsx";

type Result = { answer: ExplainAnswer } | { error: string; hint?: string } | undefined;

export function Explain({ pods }: { pods: readonly PodRow[] }) {
  const [pod, setPod] = useState("");
  const [destination, setDestination] = useState("");
  const [result, setResult] = useState<Result>(undefined);
  const [busy, setBusy] = useState(false);
  const chosen = pod || (pods[0] ? `${pods[0].namespace}/${pods[0].pod}` : "");
  const submit = async (e: Event) => {
    e.preventDefault();
    const [namespace, name] = chosen.split("/");
    setBusy(true);
    try {
      const r = await postJson<ExplainAnswer & { error?: string; hint?: string }>("/api/explain", {
        namespace,
        pod: name,
        destination: destination.trim(),
      });
      setResult(
        r.status === 200 ? { answer: r.body } : { error: r.body.error ?? "failed", hint: r.body.hint },
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="view">
      <form class="card row" onSubmit={submit}>
        <PodSelect pods={pods} value={chosen} onChange={setPod} />
        <label>
          destination{" "}
          <input
            name="destination"
            placeholder="203.0.113.10:80 or [2001:db8::10]:80"
            value={destination}
            onInput={(e) => setDestination((e.target as HTMLInputElement).value)}
          />
        </label>
        <button type="submit" disabled={busy || chosen === ""}>
          {busy ? "explaining…" : "Explain"}
        </button>
      </form>
      {result && "answer" in result && (
        <section class="card">
          <p>
            <span class={`badge verdict-${result.answer.verdict}`} data-testid="explain-verdict">
              {result.answer.verdict}
            </span>{" "}
            <span data-testid="explain-summary">{result.answer.summary}</span>
          </p>
          <pre data-testid="explain-text">{result.answer.text}</pre>
        </section>
      )}
      {result && "error" in result && (
        <section class="card error" data-testid="explain-error">
          {result.error}
          {result.hint && <div class="muted">hint: {result.hint}</div>}
        </section>
      )}
    </div>
  );
}
