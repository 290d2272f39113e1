/**
 * A real terminal for tests: a private tmux server (own socket, no user config) running one command (argv, in
 * the foreground of a plain `sh -c` that records its exit status) in a window of a fixed size; keys are sent as
 * typed, the screen is read as the user sees it, and stays readable after the command ended (`remain-on-exit`).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { until } from "./poll.ts";
import { run } from "./run.ts";

export interface Terminal {
  /** Types `text` literally (no key names), then Enter when `enter`. */
  type(text: string, enter?: boolean): Promise<void>;
  /** Sends tmux key names, e.g. "C-c", "C-d", "Enter". */
  keys(...names: string[]): Promise<void>;
  /** The visible screen, one string per line, trailing blanks trimmed (a prompt "# " reads "#"). */
  screen(): Promise<string[]>;
  /** Waits until the screen matches `pattern`; returns the screen. */
  waitFor(pattern: RegExp, what: string, timeoutMs?: number): Promise<string>;
  /** Waits for the command to end; resolves its exit status (128+N when killed by signal N). */
  exitStatus(timeoutMs?: number): Promise<number>;
  close(): Promise<void>;
}

export async function openTerminal(
  dir: string,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  size = { width: 120, height: 40 },
): Promise<Terminal> {
  const stamp = `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const socket = join(dir, `tmux-${stamp}.sock`);
  // The pane's shell runs the command in the foreground (same terminal, same process group) and writes its exit
  // status to a file once it ends: tmux's own record of a dead pane's status was once still missing 15 s after
  // the command had ended (kubectl had printed its last line and was gone).
  const statusFile = join(dir, `tmux-${stamp}.status`);
  const inShell = ["sh", "-c", 'f=$1; shift; "$@"; echo $? > "$f"', "sh", statusFile, ...argv];
  const tmux = (...args: string[]) => run("tmux", ["-S", socket, "-f", "/dev/null", ...args], { env });
  const started = await tmux(
    "new-session",
    "-d",
    "-s",
    "t",
    "-x",
    String(size.width),
    "-y",
    String(size.height),
    "--",
    ...inShell,
  );
  if (started.code !== 0) throw new Error(`tmux new-session failed: ${started.stderr}`);
  await tmux("set-option", "-t", "t", "remain-on-exit", "on");
  const screen = async () =>
    (await tmux("capture-pane", "-p", "-t", "t")).stdout.split("\n").map((l) => l.trimEnd());
  return {
    type: async (text, enter = false) => {
      await tmux("send-keys", "-t", "t", "-l", text);
      if (enter) await tmux("send-keys", "-t", "t", "Enter");
    },
    keys: async (...names) => {
      await tmux("send-keys", "-t", "t", ...names);
    },
    screen,
    waitFor: async (pattern, what, timeoutMs = 15_000) => {
      let last = "";
      return until(
        what,
        async () => {
          last = (await screen()).join("\n");
          return pattern.test(last) ? last : undefined;
        },
        timeoutMs,
        100,
      ).catch((e: Error) => {
        throw new Error(`${e.message}; screen:\n${last}`);
      });
    },
    exitStatus: async (timeoutMs = 15_000) => {
      const status = await until(
        "the command to end",
        async () => {
          const text = existsSync(statusFile) ? readFileSync(statusFile, "utf8") : "";
          return text.endsWith("\n") ? Number(text) : undefined;
        },
        timeoutMs,
        100,
      ).catch(async (e: Error) => {
        // What the terminal showed tells a lost keystroke from a command that would not end; the processes on
        // terminals tell which end still runs (the client in the pane, or the command on its pod's terminal).
        const ps = await run("ps", ["-eo", "pid,ppid,pgid,sid,stat,tty,wchan:20,args"]);
        const onTerminals = ps.stdout.split("\n").filter((line, i) => i === 0 || / pts\/\d+ /.test(line));
        throw new Error(
          `${e.message}; screen:\n${(await screen()).join("\n")}\nprocesses on terminals:\n${onTerminals.join("\n")}`,
        );
      });
      return status;
    },
    close: async () => {
      await tmux("kill-server");
    },
  };
}
