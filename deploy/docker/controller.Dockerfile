# osm-ts control plane image: `osm controller run` and `osm injector run` (same image, two Deployments).
# Build from the repository root:  docker build -f deploy/docker/controller.Dockerfile -t <registry>/osm-controller:<tag> .
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the `node` npm package's installer is not needed; the base image is Node.js 24.
RUN npm ci --omit=dev --ignore-scripts

FROM node:24-bookworm-slim
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY deploy/crds ./deploy/crds
# The manifests run `osm ...`: the same command name resolves on the embedded node agent's PATH.
RUN printf '#!/bin/sh\nexec node --disable-warning=ExperimentalWarning /app/src/cli/main.ts "$@"\n' > /usr/local/bin/osm \
 && chmod 0755 /usr/local/bin/osm
# Non-root; the Deployments also drop every capability and mount the root filesystem read-only.
USER 65532:65532
ENTRYPOINT []
CMD ["osm", "controller", "run"]
