/** The dashboard page: five views over one event stream; the view is in the URL's hash (#pods, …). */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Editor } from "./editor.tsx";
import { Explain } from "./explain.tsx";
import { useFeed } from "./feed.ts";
import { Live } from "./live.tsx";
import { Overview } from "./overview.tsx";
import { Pods } from "./pods.tsx";

const VIEWS = [
  ["overview", "Mesh"],
  ["pods", "Pods"],
  ["explain", "Explain"],
  ["live", "Live decisions"],
  ["meshconfig", "MeshConfig"],
] as const;
type View = (typeof VIEWS)[number][0];

const viewOf = (hash: string): View => (VIEWS.find(([id]) => `#${id}` === hash)?.[0] ?? "overview") as View;

function App() {
  const { state, decisions, connected } = useFeed();
  const [view, setView] = useState<View>(viewOf(location.hash));
  useEffect(() => {
    const onHash = () => setView(viewOf(location.hash));
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  return (
    <>
      <header>
        <h1>osm-ts</h1>
        <nav>
          {VIEWS.map(([id, title]) => (
            <a key={id} href={`#${id}`} class={id === view ? "active" : ""}>
              {title}
            </a>
          ))}
        </nav>
        <span class={`status ${connected ? "ok" : "bad"}`} data-testid="connection">
          {connected ? (state ? `live · ${state.at.slice(11, 19)}` : "connected, listing…") : "disconnected"}
        </span>
      </header>
      <main>
        {!state ? (
          <p class="muted view">Waiting for the API server…</p>
        ) : view === "overview" ? (
          <Overview overview={state.overview} />
        ) : view === "pods" ? (
          <Pods pods={state.pods} />
        ) : view === "explain" ? (
          <Explain pods={state.pods} />
        ) : view === "live" ? (
          <Live decisions={decisions} pods={state.pods} />
        ) : (
          <Editor traffic={state.overview.traffic} meshConfig={state.overview.meshConfig} />
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById("app") as HTMLElement);
