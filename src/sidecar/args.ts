/**
 * `osm sidecar run`'s flags, parsed by hand: the sidecar runs in every pod, and a CLI framework there costs
 * RSS (commander ~4 MB) for a dozen flags. Pure: argv in, options or a clear error out.
 */
import { type ForwardedProbe, parseProbe } from "../config/health-probes.ts";
import { SIDECAR_TOKEN_FILE } from "../config/sidecar-token.ts";
import { ENVOY_ADMIN_PORT, ENVOY_INBOUND_LISTENER_PORT, ENVOY_OUTBOUND_LISTENER_PORT } from "../constants.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import { DEFAULT_BACKOFF } from "./backoff.ts";
import { LOG_LEVELS, type LogLevel } from "./log.ts";

export interface RunOptions {
  config?: string;
  controlPlane?: string;
  pod?: string;
  tokenFile: string;
  adminPort: number;
  outboundPort: number;
  inboundPort: number;
  /** Milliseconds. */
  connectTimeout: number;
  /** Seconds. */
  idleTimeout: number;
  /** Seconds. */
  drainTimeout: number;
  logLevel: LogLevel;
  /** One line per connection whatever `logLevel` is, as Envoy's access log. */
  accessLog: boolean;
  allowAnyUid: boolean;
  reconnectMaxDelay: number;
  relay: "js" | "splice";
  /** Who accepts: the relay threads (`native`, needs the splice relay) or Node (`js`). */
  accept: "js" | "native";
  /** Splice relay threads; undefined: one per CPU. */
  relayThreads?: number;
  /** The app's httpGet probes to serve on 15901–15903 and forward (the injector's `--probe` flags). */
  probes: ForwardedProbe[];
}

/** The addon's limit (splice-relay.c's MAX_WORKERS); the default, one thread per CPU, stops there as HAProxy's. */
export const MAX_RELAY_THREADS = 64;

/** `--accept`'s default with the splice relay (with `--relay js` Node accepts). */
export const DEFAULT_ACCEPT: RunOptions["accept"] = "native";

type Setter = (options: RunOptions, value: string, flag: string) => void;

interface Flag {
  readonly value?: string;
  readonly help: string;
  readonly set: Setter;
}

type IntegerOption = {
  [K in keyof RunOptions]-?: NonNullable<RunOptions[K]> extends number ? K : never;
}[keyof RunOptions];

/** An integer flag in [min, max] stored as `options[key]`. */
function integer(key: IntegerOption, min: number, max: number, value: string, help: string): Flag {
  return { value, help, set: integerSetter(key, min, max) };
}

function integerSetter(key: IntegerOption, min: number, max: number): Setter {
  return (options, value, flag) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
      throw new MeshError(
        ErrorCode.InvalidArgument,
        `${flag}: must be an integer from ${min} to ${max}, got "${value}"`,
      );
    }
    options[key] = n;
  };
}

function oneOf<T extends string>(values: readonly T[], apply: (options: RunOptions, v: T) => void): Setter {
  return (options, value, flag) => {
    if (!values.includes(value as T)) {
      throw new MeshError(
        ErrorCode.InvalidArgument,
        `${flag}: must be one of ${values.join(", ")}, got "${value}"`,
      );
    }
    apply(options, value as T);
  };
}

const setControlPlane: Setter = (options, value, flag) => {
  if (options.controlPlane !== undefined) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      `${flag}: give one of --control-plane or --controller (the same flag)`,
    );
  }
  options.controlPlane = value;
};

const FLAGS: Record<string, Flag> = {
  "--config": {
    value: "<file>",
    help: "config file (JSON or YAML, osm.sidecar/v1); reloaded when it changes or on SIGHUP",
    set: (o, v) => {
      o.config = v;
    },
  },
  "--control-plane": {
    value: "<url>",
    help: "controller base URL to watch for config (HTTP/JSON long-poll; bearer token from --token-file)",
    set: setControlPlane,
  },
  "--controller": {
    value: "<url>",
    help: "same as --control-plane (the injector's spelling)",
    set: setControlPlane,
  },
  "--token-file": {
    value: "<file>",
    help: `the pod's projected service-account token for the controller, re-read before every request (default ${SIDECAR_TOKEN_FILE})`,
    set: (o, v) => {
      o.tokenFile = v;
    },
  },
  "--pod": {
    value: "<namespace/name>",
    help: "this pod, for --control-plane (default: $POD_NAMESPACE/$POD_NAME)",
    set: (o, v) => {
      o.pod = v;
    },
  },
  "--admin-port": integer(
    "adminPort",
    1,
    65535,
    "<port>",
    `admin port on 127.0.0.1 (default ${ENVOY_ADMIN_PORT})`,
  ),
  "--outbound-port": integer(
    "outboundPort",
    1,
    65535,
    "<port>",
    `outbound listener port (default ${ENVOY_OUTBOUND_LISTENER_PORT})`,
  ),
  "--inbound-port": integer(
    "inboundPort",
    1,
    65535,
    "<port>",
    `inbound listener port (default ${ENVOY_INBOUND_LISTENER_PORT})`,
  ),
  "--connect-timeout": integer(
    "connectTimeout",
    1,
    600_000,
    "<ms>",
    "upstream connect timeout; the client is reset after it (default 5000)",
  ),
  "--idle-timeout": integer(
    "idleTimeout",
    0,
    86_400 * 7,
    "<seconds>",
    "reset a connection idle this long, 0 = never (default 3600)",
  ),
  "--drain-timeout": integer(
    "drainTimeout",
    0,
    3600,
    "<seconds>",
    "on SIGTERM, how long open connections may finish (default 10)",
  ),
  "--reconnect-max-delay": integer(
    "reconnectMaxDelay",
    100,
    600_000,
    "<ms>",
    `longest wait between controller reconnects, jittered exponential backoff (default ${DEFAULT_BACKOFF.maxMs})`,
  ),
  "--relay": {
    value: "<mode>",
    help: "how bytes are relayed: splice (kernel splice(2) in the addon, default) or js (streams)",
    set: oneOf(["splice", "js"] as const, (o, v) => {
      o.relay = v;
    }),
  },
  "--accept": {
    value: "<mode>",
    help: `who accepts and decides: native (the relay threads; default with --relay splice) or js (Node)`,
    set: oneOf(["native", "js"] as const, (o, v) => {
      o.accept = v;
    }),
  },
  "--relay-threads": {
    value: "<n>",
    help: "splice relay threads, each with its own listening sockets under --accept native (default: one per CPU)",
    set: integerSetter("relayThreads", 1, MAX_RELAY_THREADS),
  },
  "--log-level": {
    value: "<level>",
    help: "fatal|error|warn|info|debug|silent (default info)",
    set: oneOf(LOG_LEVELS, (o, v) => {
      o.logLevel = v;
    }),
  },
  "--access-log": {
    value: "<on|off>",
    help: "one line per connection (its decision), whatever --log-level is, as Envoy's access log (default on)",
    set: oneOf(["on", "off"] as const, (o, v) => {
      o.accessLog = v === "on";
    }),
  },
  "--probe": {
    value: "<kind>/<container>=<http|https>:<port><path>",
    help: "serve this app probe on the kind's port (liveness 15901, readiness 15902, startup 15903) and forward it to 127.0.0.1:<port><path>; repeatable (the injector sets it)",
    set: (o, v, flag) => {
      const probe = parseProbe(v);
      if (probe === undefined) {
        throw new MeshError(
          ErrorCode.InvalidArgument,
          `${flag}: must be <liveness|readiness|startup>/<container>=<http|https>:<port>/<path>, got "${v}"`,
        );
      }
      o.probes.push(probe);
    },
  },
  "--allow-any-uid": {
    help: "do not insist on uid 1500 (only where no interception rules apply)",
    set: (o) => {
      o.allowAnyUid = true;
    },
  },
};

export const USAGE = [
  "Usage: osm sidecar run [options]",
  "",
  "run the sidecar proxy (as uid 1500) in this network namespace",
  "",
  "Options:",
  ...Object.entries(FLAGS).map(
    ([name, flag]) => `  ${`${name}${flag.value ? ` ${flag.value}` : ""}`.padEnd(34)}${flag.help}`,
  ),
  `  ${"-h, --help".padEnd(34)}display help for command`,
  "",
].join("\n");

export type ParsedArgs = { readonly help: true } | { readonly help: false; readonly options: RunOptions };

/** Parses the words after `osm sidecar run` (`--flag value` or `--flag=value`). */
export function parseRunArgs(args: readonly string[]): ParsedArgs {
  const options: RunOptions = {
    tokenFile: SIDECAR_TOKEN_FILE,
    adminPort: ENVOY_ADMIN_PORT,
    outboundPort: ENVOY_OUTBOUND_LISTENER_PORT,
    inboundPort: ENVOY_INBOUND_LISTENER_PORT,
    connectTimeout: 5000,
    idleTimeout: 3600,
    drainTimeout: 10,
    logLevel: "info",
    accessLog: true,
    allowAnyUid: false,
    reconnectMaxDelay: DEFAULT_BACKOFF.maxMs,
    relay: "splice",
    accept: DEFAULT_ACCEPT,
    probes: [],
  };
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    if (word === "-h" || word === "--help") return { help: true };
    const eq = word.indexOf("=");
    const name = eq > 0 ? word.slice(0, eq) : word;
    const flag = FLAGS[name];
    if (name === "--node-flag") {
      throw new MeshError(
        ErrorCode.InvalidArgument,
        `"${word}": bin/osm, the sidecar's launcher, turns --node-flag words into Node flags before Node starts`,
        { hint: "start the sidecar as bin/osm sidecar run …, or give the flag to node itself" },
      );
    }
    if (flag === undefined) {
      throw new MeshError(ErrorCode.InvalidArgument, `unknown option "${word}" for osm sidecar run`, {
        hint: "run osm sidecar run --help",
      });
    }
    if (flag.value === undefined) {
      if (eq > 0) throw new MeshError(ErrorCode.InvalidArgument, `${name} takes no value, got "${word}"`);
      flag.set(options, "", name);
      continue;
    }
    let value: string | undefined;
    if (eq > 0) value = word.slice(eq + 1);
    else {
      value = args[i + 1];
      i += 1;
    }
    if (value === undefined) {
      throw new MeshError(ErrorCode.InvalidArgument, `${name}: missing value ${flag.value}`);
    }
    flag.set(options, value, name);
  }
  // Without --accept, Node accepts for the js relay (the relay threads that accept are the splice relay's).
  const acceptGiven = args.some((word) => word === "--accept" || word.startsWith("--accept="));
  if (!acceptGiven && options.relay === "js") options.accept = "js";
  if (options.accept === "native" && options.relay === "js") {
    throw new MeshError(ErrorCode.InvalidArgument, "--accept native needs --relay splice, got --relay js", {
      hint: "the relay threads that accept are the splice relay's; use --accept js with --relay js",
    });
  }
  return { help: false, options };
}
