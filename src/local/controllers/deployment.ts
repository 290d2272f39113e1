/**
 * Deployment → ReplicaSets: one ReplicaSet per pod template (named `<deployment>-<pod-template-hash>`, so
 * pods are `curl-54ccc6954c-9rlvp`), rolled by the strategy: RollingUpdate within maxSurge/maxUnavailable
 * (default 25%/25%: one replica surges one new pod, then the old one goes once the new is ready), or
 * Recreate. Writes the status `kubectl rollout status` reads (observedGeneration, replicas,
 * updatedReplicas, readyReplicas, availableReplicas, conditions). `rollout restart` changes the template's
 * annotations, hence the hash, hence a new ReplicaSet.
 */
import type { Logger } from "pino";
import type { Clock } from "../../edge/clock.ts";
import { type Api, internalContext, jsonEqual } from "../apiserver/api.ts";
import { nowIso } from "../apiserver/defaults.ts";
import type { KubeObject } from "../store/store.ts";
import { createRecorder } from "./events.ts";
import { WorkQueue } from "./queue.ts";
import {
  controllerOf,
  isPodActive,
  isPodReady,
  type Obj,
  ownedBy,
  ownerReference,
  templateHash,
  typeOf,
} from "./util.ts";

const REVISION = "deployment.kubernetes.io/revision";
const HASH_LABEL = "pod-template-hash";

/** An int-or-percent of `total`, rounded up (maxSurge) or down (maxUnavailable). */
export function resolveIntOrPercent(value: unknown, total: number, roundUp: boolean): number {
  if (typeof value === "number") return value;
  const m = /^(\d+)%$/.exec(String(value ?? "0"));
  if (!m) return Number(value) || 0;
  const exact = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

export function startDeploymentController(api: Api, logger: Logger, clock: Clock): () => void {
  const deployType = typeOf(api, "apps", "deployments");
  const rsType = typeOf(api, "apps", "replicasets");
  const log = logger.child({ controller: "deployment" });
  const ctx = internalContext;

  const record = createRecorder(api, "deployment-controller", log, clock);

  const scale = async (rs: Obj, replicas: number, annotations?: Record<string, string>, owner?: Obj) => {
    if (rs.spec.replicas === replicas && !annotations) return;
    if (owner && rs.spec.replicas !== replicas) {
      const verb = replicas > rs.spec.replicas ? "up" : "down";
      await record(
        api.present(deployType, owner as KubeObject),
        "Normal",
        "ScalingReplicaSet",
        `Scaled ${verb} replica set ${rs.metadata.name} from ${rs.spec.replicas} to ${replicas}`,
      );
    }
    await api.mutate(
      rsType,
      rs.metadata.namespace,
      rs.metadata.name,
      (c) => {
        const u = structuredClone(c) as Obj;
        u.spec.replicas = replicas;
        if (annotations) u.metadata.annotations = { ...(u.metadata.annotations ?? {}), ...annotations };
        return u;
      },
      ctx(),
    );
  };

  const reconcile = async (key: string): Promise<void> => {
    const [ns = "", name = ""] = key.split("/");
    const d = api.find(deployType, ns, name) as Obj | undefined;
    if (!d || d.metadata.deletionTimestamp) return;
    const uid = d.metadata.uid;
    const desired: number = d.spec?.replicas ?? 1;
    const owned = api.store.list("apps/replicasets", ns).filter((rs) => ownedBy(rs, uid)) as Obj[];
    const hash = templateHash(d.spec.template, d.status?.collisionCount ?? 0);
    // The new ReplicaSet is the one whose template equals the Deployment's, ignoring the hash label
    // (deployment/util EqualIgnoreHash): a rollback then reuses the old ReplicaSet and its pod names.
    const withoutHash = (template: Obj | undefined) => {
      const t = structuredClone(template ?? {});
      if (t.metadata?.labels) delete t.metadata.labels[HASH_LABEL];
      return t;
    };
    let newRS =
      owned.find((rs) => jsonEqual(withoutHash(rs.spec?.template), withoutHash(d.spec.template))) ??
      owned.find((rs) => rs.metadata.labels?.[HASH_LABEL] === hash);
    const old = owned.filter((rs) => rs !== newRS);
    const revisions = owned.map((rs) => Number(rs.metadata.annotations?.[REVISION] ?? 0));
    const maxRevision = Math.max(0, ...revisions);
    const pods = api.store.list("/pods", ns);
    const podsOf = (rs: Obj) => pods.filter((p) => ownedBy(p, rs.metadata.uid) && isPodActive(p));
    const readyOf = (rs: Obj) => podsOf(rs).filter(isPodReady).length;

    const strategy = d.spec?.strategy?.type ?? "RollingUpdate";
    const maxSurge =
      strategy === "RollingUpdate"
        ? resolveIntOrPercent(d.spec.strategy?.rollingUpdate?.maxSurge ?? "25%", desired, true)
        : 0;
    let maxUnavailable =
      strategy === "RollingUpdate"
        ? resolveIntOrPercent(d.spec.strategy?.rollingUpdate?.maxUnavailable ?? "25%", desired, false)
        : desired;
    if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;

    if (d.spec?.paused) {
      // Paused: no rollout; the newest ReplicaSet is kept at the desired size.
      const latest =
        newRS ??
        [...old].sort(
          (a, b) =>
            Number(b.metadata.annotations?.[REVISION] ?? 0) - Number(a.metadata.annotations?.[REVISION] ?? 0),
        )[0];
      if (!latest) return;
      await scale(latest, desired, undefined, d);
      await writeStatus(
        ns,
        name,
        latest,
        owned.filter((rs) => rs !== latest),
        podsOf,
        readyOf,
        desired,
        maxUnavailable,
      );
      return;
    }

    if (!newRS) {
      const template = structuredClone(d.spec.template ?? {});
      template.metadata ??= {};
      template.metadata.labels = { ...(template.metadata.labels ?? {}), [HASH_LABEL]: hash };
      const oldTotal = old.reduce((n, rs) => n + (rs.spec?.replicas ?? 0), 0);
      let initial =
        strategy === "Recreate" ? 0 : Math.max(0, Math.min(desired, desired + maxSurge - oldTotal));
      if (old.length === 0) initial = desired;
      const rs = {
        apiVersion: "apps/v1",
        kind: "ReplicaSet",
        metadata: {
          name: `${name}-${hash}`,
          namespace: ns,
          labels: { ...(d.spec.template?.metadata?.labels ?? {}), [HASH_LABEL]: hash },
          annotations: {
            [REVISION]: String(maxRevision + 1),
            "deployment.kubernetes.io/desired-replicas": String(desired),
            "deployment.kubernetes.io/max-replicas": String(desired + maxSurge),
          },
          ownerReferences: [ownerReference(d as KubeObject, "apps/v1", "Deployment")],
        },
        spec: {
          replicas: initial,
          selector: {
            ...d.spec.selector,
            matchLabels: { ...(d.spec.selector?.matchLabels ?? {}), [HASH_LABEL]: hash },
          },
          template,
        },
      };
      newRS = (await api.create(rsType, ns, rs, ctx())) as Obj;
      await record(
        api.present(deployType, d as KubeObject),
        "Normal",
        "ScalingReplicaSet",
        `Scaled up replica set ${rs.metadata.name} to ${initial}`,
      );
      log.info({ deployment: key, replicaset: rs.metadata.name }, "created replicaset");
    } else if (Number(newRS.metadata.annotations?.[REVISION] ?? 0) < maxRevision) {
      // Rolled back to an earlier template: it becomes the newest revision again.
      await scale(newRS, newRS.spec.replicas, { [REVISION]: String(maxRevision + 1) });
    }

    if (strategy === "Recreate") {
      for (const rs of old) await scale(rs, 0, undefined, d);
      const oldRunning = old.some((rs) => podsOf(rs).length > 0);
      if (!oldRunning) await scale(newRS, desired, undefined, d);
    } else {
      const total = old.reduce((n, rs) => n + (rs.spec?.replicas ?? 0), newRS.spec.replicas as number);
      let newTarget: number = newRS.spec.replicas;
      if (newTarget > desired) newTarget = desired;
      else if (newTarget < desired)
        newTarget = Math.min(desired, newTarget + Math.max(0, desired + maxSurge - total));
      await scale(newRS, newTarget, undefined, d);
      const minAvailable = desired - maxUnavailable;
      let budget = Math.max(0, readyOf(newRS) + old.reduce((n, rs) => n + readyOf(rs), 0) - minAvailable);
      for (const rs of [...old].sort((a, b) =>
        String(a.metadata.creationTimestamp).localeCompare(String(b.metadata.creationTimestamp)),
      )) {
        const replicas: number = rs.spec?.replicas ?? 0;
        if (replicas === 0) continue;
        const unhealthy = Math.max(0, replicas - readyOf(rs));
        const down = Math.min(replicas, unhealthy + budget);
        budget -= Math.max(0, down - unhealthy);
        if (down > 0) await scale(rs, replicas - down, undefined, d);
      }
    }

    // Old ReplicaSets beyond revisionHistoryLimit go once scaled to zero.
    const limit: number = d.spec?.revisionHistoryLimit ?? 10;
    const idle = old
      .filter((rs) => (rs.spec?.replicas ?? 0) === 0 && podsOf(rs).length === 0)
      .sort(
        (a, b) =>
          Number(a.metadata.annotations?.[REVISION] ?? 0) - Number(b.metadata.annotations?.[REVISION] ?? 0),
      );
    for (const rs of idle.slice(0, Math.max(0, idle.length - limit))) {
      await api.delete(rsType, ns, rs.metadata.name, {}, ctx()).catch(() => undefined);
    }

    await writeStatus(ns, name, newRS, old, podsOf, readyOf, desired, maxUnavailable);
  };

  const writeStatus = async (
    ns: string,
    name: string,
    newRS: Obj,
    old: Obj[],
    podsOf: (rs: Obj) => KubeObject[],
    readyOf: (rs: Obj) => number,
    desired: number,
    maxUnavailable: number,
  ) => {
    const current = api.find(deployType, ns, name) as Obj | undefined;
    if (!current) return;
    const all = [newRS, ...old];
    const replicas = all.reduce((n, rs) => n + podsOf(rs).length, 0);
    const ready = all.reduce((n, rs) => n + readyOf(rs), 0);
    const updated = podsOf(newRS).length;
    const complete = updated === desired && replicas === desired && ready === desired;
    const previous: Obj[] = current.status?.conditions ?? [];
    const condition = (type: string, status: string, reason: string, message: string) => {
      const before = previous.find((c) => c.type === type);
      const same = before && before.status === status && before.reason === reason;
      const t = nowIso(clock());
      return {
        type,
        status,
        lastUpdateTime: same ? before.lastUpdateTime : t,
        lastTransitionTime: before && before.status === status ? before.lastTransitionTime : t,
        reason,
        message,
      };
    };
    // Progress = the counts moved since the last status; none for progressDeadlineSeconds → the
    // Progressing condition turns False/ProgressDeadlineExceeded, which `kubectl rollout status` reports.
    const progressed =
      (current.status?.updatedReplicas ?? 0) !== updated ||
      (current.status?.readyReplicas ?? 0) !== ready ||
      (current.status?.replicas ?? 0) !== replicas ||
      (current.status?.observedGeneration ?? 0) !== (current.metadata.generation ?? 1);
    const deadlineMs = (current.spec?.progressDeadlineSeconds ?? 600) * 1000;
    const progressing = () => {
      const rsName = newRS.metadata.name;
      if (complete)
        return condition(
          "Progressing",
          "True",
          "NewReplicaSetAvailable",
          `ReplicaSet "${rsName}" has successfully progressed.`,
        );
      const before = previous.find((c) => c.type === "Progressing");
      const since = before && !progressed ? Date.parse(before.lastUpdateTime) : clock();
      if (before?.reason === "ProgressDeadlineExceeded" && !progressed) return before;
      if (clock() - since > deadlineMs) {
        return condition(
          "Progressing",
          "False",
          "ProgressDeadlineExceeded",
          `ReplicaSet "${rsName}" has timed out progressing.`,
        );
      }
      queue.after(`${ns}/${name}`, Math.max(100, since + deadlineMs - clock() + 100));
      const t = nowIso(clock());
      return {
        type: "Progressing",
        status: "True",
        lastUpdateTime: progressed || !before ? t : before.lastUpdateTime,
        lastTransitionTime: before?.status === "True" ? before.lastTransitionTime : t,
        reason: "ReplicaSetUpdated",
        message: `ReplicaSet "${rsName}" is progressing.`,
      };
    };
    const status: Obj = {
      observedGeneration: current.metadata.generation ?? 1,
      replicas,
      updatedReplicas: updated,
      readyReplicas: ready,
      availableReplicas: ready,
      ...(desired - ready > 0 ? { unavailableReplicas: desired - ready } : {}),
      conditions: [
        ready >= desired - maxUnavailable
          ? condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
          : condition(
              "Available",
              "False",
              "MinimumReplicasUnavailable",
              "Deployment does not have minimum availability.",
            ),
        progressing(),
      ],
    };
    if (status.replicas === 0) delete status.replicas;
    if (status.readyReplicas === 0) delete status.readyReplicas;
    if (status.availableReplicas === 0) delete status.availableReplicas;
    if (status.updatedReplicas === 0) delete status.updatedReplicas;
    if (current.status?.collisionCount !== undefined) status.collisionCount = current.status.collisionCount;
    const comparable = (s: Obj | undefined) => ({
      ...s,
      conditions: (s?.conditions ?? []).map((c: Obj) => ({
        type: c.type,
        status: c.status,
        reason: c.reason,
      })),
    });
    if (jsonEqual(comparable(current.status), comparable(status))) return;
    await api.mutate(deployType, ns, name, (c) => ({ ...c, status }), ctx(), "status");
  };

  const queue = new WorkQueue("deployment", reconcile, log);
  const unsubscribe = api.store.subscribe((event) => {
    if (event.groupResource === "apps/deployments")
      queue.add(`${event.namespace}/${event.object.metadata.name}`);
    else if (event.groupResource === "apps/replicasets") {
      const owner = controllerOf(event.object);
      if (owner?.kind === "Deployment") queue.add(`${event.namespace}/${owner.name}`);
    }
  });
  for (const d of api.store.list("apps/deployments")) queue.add(`${d.metadata.namespace}/${d.metadata.name}`);
  return () => {
    unsubscribe();
    queue.stop();
  };
}
