# syntax=docker/dockerfile:1
# Build on the current Node LTS; the code itself also runs on Node 20 (package.json engines).
FROM node:26-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY plugins ./plugins
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev

FROM node:26-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=root:root /app/node_modules ./node_modules
# the bundle is all the CMD runs (dist/src and dist/plugins are the library build for apps that
# embed the plugins, with maps to sources the image does not hold); its map is kept for
# node --enable-source-maps
COPY --from=build --chown=root:root /app/dist/immich-proxy.cjs /app/dist/immich-proxy.cjs.map /app/dist/immich-proxy.cjs.LEGAL.txt ./dist/
COPY package.json ./
COPY deploy/docker-entrypoint.sh ./deploy/
# automatic HTTPS keeps its account and certificates here, writable by the user the proxy runs
# as (the entrypoint's node); docker-compose.yml mounts a named volume on it so they outlive the container
ENV ACME_STORAGE=/data/acme
RUN mkdir -p /data/acme && chown node:node /data/acme && chmod 700 /data/acme
# Starts as root for the entrypoint alone: it copies certificate files the node user may not read
# (certbot's privkey.pem is root's, 0600) to a tmpfs folder for it, then runs the CMD as node
# (setpriv) in its place. Ports inside stay above 1024 (8080 HTTP or 8443 HTTPS, HTTP_PORT for
# redirects when set, 9090 admin on loopback).
EXPOSE 8443 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "dist/immich-proxy.cjs", "--healthcheck"]
ENTRYPOINT ["/app/deploy/docker-entrypoint.sh"]
# node is PID 1 (the entrypoint execs it) and handles SIGTERM itself (close-with-grace in
# src/server.ts: drain, then exit 0).
# dist/immich-proxy.cjs is the server in one file (scripts/bundle.mjs): about 40 % faster to start.
# --expose-gc lets the forwarder collect the young generation every 8 MiB it moves, so the buffers
# of finished chunks are freed before they pile up (plugins/forwarding/young-collection.ts).
CMD ["node", "--expose-gc", "dist/immich-proxy.cjs"]
