# osm-ts init image (the `osm-init` container): a shell plus iptables (legacy and nft variants), ip6tables
# and nft. The injector renders the whole script into the PodSpec (`/bin/sh -c <script>`), as OSM does, so
# the image holds no osm-ts code. OSM's own: alpine + `apk add iptables` (dockerfiles/Dockerfile.init).
# Build from the repository root:  docker build -f deploy/docker/init.Dockerfile -t <registry>/osm-init:<tag> .
FROM alpine:3.20
RUN apk add --no-cache iptables ip6tables nftables
# Runs as root with NET_ADMIN (set by the injector), like OSM's osm-init.
ENTRYPOINT []
CMD ["/bin/sh"]
