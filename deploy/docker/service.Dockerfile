# syntax=docker/dockerfile:1
# One image per Palisade service, from the repository root as build context:
#
#   docker build -f deploy/docker/service.Dockerfile --build-arg SERVICE=auth --build-arg PORT=7101 .
#
# services/<name>/Dockerfile is this file with SERVICE and PORT filled in (rendered by
# deploy/docker/render-dockerfiles.js; deploy/compose.unit.spec.ts checks they match).
# The `tools` target (Node, the built libs and deploy/) runs the compose set-up jobs.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- dependencies: the whole workspace, exactly as locked
FROM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund --loglevel=error

# ---- set-up jobs (PKI, NATS streams): Node plus the built libs
FROM deps AS tools
RUN npx tsc -b libs/pki libs/nats libs/contracts
CMD ["bash"]

# ---- build one service, then keep only what it runs
FROM deps AS build
ARG SERVICE
RUN test -n "${SERVICE}" && test -f "services/${SERVICE}/package.json" \
 && npx tsc -b "services/${SERVICE}" \
 && npm prune --omit=dev --no-audit --no-fund --loglevel=error \
 && mkdir -p /out/services \
 && cp -a package.json node_modules deploy/docker/healthcheck.js /out/ \
 && for lib in libs/*/; do \
      [ -d "${lib}dist" ] || continue; \
      mkdir -p "/out/${lib}" && cp -a "${lib}package.json" "${lib}dist" "/out/${lib}"; \
    done \
 && mkdir -p "/out/services/${SERVICE}" \
 && cp -a "services/${SERVICE}/package.json" "services/${SERVICE}/dist" "/out/services/${SERVICE}/" \
 && find /out -name '*.tsbuildinfo' -delete \
 && printf "require('./services/%s/dist/main.js');\n" "${SERVICE}" > /out/main.js

# ---- runtime: non-root, nothing writable but a tmpfs /tmp (read_only in compose)
FROM ${NODE_IMAGE} AS runtime
ARG SERVICE
ARG PORT
ENV NODE_ENV=production \
    SERVICE=${SERVICE} \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=${PORT}
WORKDIR /app
# Owned by root, read-only to the service user.
COPY --from=build --chown=root:root /out /app
RUN groupadd --system --gid 10000 palisade \
 && useradd --system --uid 10000 --gid palisade --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin palisade
USER 10000:10000
EXPOSE ${PORT}
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["node", "/app/healthcheck.js"]
CMD ["node", "/app/main.js"]
