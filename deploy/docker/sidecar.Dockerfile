# osm-ts sidecar image (the container named `envoy`): `osm sidecar run`, as uid 1500 (the interception rules
# exempt that uid). Build from the repository root:
#   docker build -f deploy/docker/sidecar.Dockerfile -t <registry>/osm-sidecar:<tag> .
FROM node:24-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends g++ make && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY src ./src
# The Node-API addon that reads SO_ORIGINAL_DST (src/sidecar/native), compiled against node-api-headers.
RUN node src/sidecar/native/build.ts && npm prune --omit=dev --ignore-scripts

FROM node:24-bookworm-slim
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/build ./build
COPY --from=build /app/src ./src
COPY package.json ./
RUN printf '#!/bin/sh\nexec node --disable-warning=ExperimentalWarning /app/src/cli/main.ts "$@"\n' > /usr/local/bin/osm \
 && chmod 0755 /usr/local/bin/osm
# Everything above is world-readable; the injector sets runAsUser 1500 on the container.
USER 1500:1500
ENTRYPOINT []
CMD ["osm", "sidecar", "run"]
