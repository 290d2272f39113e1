# osm-ts node agent image (the osm-node DaemonSet): `osm node-agent`, which enters meshed pods' network
# namespaces and brings their interception up to date live. Build from the repository root:
#   docker build -f deploy/docker/node.Dockerfile -t <registry>/osm-node:<tag> .
FROM node:24-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends g++ make && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY src ./src
# The native parts, among them build/osm-nft-batch (src/edge/native/nft-batch.c): nft in every pod's
# namespace through libnftables, without a process per change.
RUN node src/sidecar/native/build.ts && npm prune --omit=dev --ignore-scripts

FROM node:24-bookworm-slim
# nft and libnftables (nftables pods), iptables/ip6tables and their -restore (iptables pods, both variants),
# ip (a namespace's interfaces), nsenter (util-linux: commands inside a pod's namespace).
RUN apt-get update \
 && apt-get install -y --no-install-recommends nftables libnftables1 iptables iproute2 util-linux \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/build ./build
COPY --from=build /app/src ./src
COPY package.json ./
RUN printf '#!/bin/sh\nexec node --disable-warning=ExperimentalWarning /app/src/cli/main.ts "$@"\n' > /usr/local/bin/osm \
 && chmod 0755 /usr/local/bin/osm
# Root with NET_ADMIN, NET_RAW, SYS_ADMIN and SYS_PTRACE only (the DaemonSet drops the rest; deploy/README.md).
USER 0:0
ENTRYPOINT []
CMD ["osm", "node-agent"]
