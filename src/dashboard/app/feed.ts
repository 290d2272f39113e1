/** The server's event stream (state, decision history, each new decision) as Preact state. */
import { useEffect, useState } from "preact/hooks";
import type { DashboardState, DecisionEvent } from "../wire.ts";

/** As many decisions as the server keeps. */
const KEEP = 500;

export interface Feed {
  readonly state: DashboardState | undefined;
  readonly decisions: readonly DecisionEvent[];
  readonly connected: boolean;
}

export function useFeed(): Feed {
  const [state, setState] = useState<DashboardState | undefined>(undefined);
  const [decisions, setDecisions] = useState<readonly DecisionEvent[]>([]);
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    // EventSource reconnects by itself; the server then sends the state and its history again.
    const source = new EventSource("/api/events");
    source.onopen = () => setConnected(true);
    source.onerror = () => setConnected(false);
    source.addEventListener("state", (e) => setState(JSON.parse((e as MessageEvent).data)));
    source.addEventListener("history", (e) => setDecisions(JSON.parse((e as MessageEvent).data)));
    source.addEventListener("decision", (e) => {
      const d = JSON.parse((e as MessageEvent).data) as DecisionEvent;
      setDecisions((list) => [...list.slice(-(KEEP - 1)), d]);
    });
    return () => source.close();
  }, []);
  return { state, decisions, connected };
}

/** POSTs JSON to the dashboard server; resolves with the parsed answer and the HTTP status. */
export async function postJson<T>(path: string, body: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as T };
}
