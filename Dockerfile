# One image per app: docker build --build-arg APP=registry-api -t switchboard/registry-api .
# Node 24 is the current LTS; the code also runs on Node 20.19+ (development machines).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
ARG APP=registry-api
# registry-api serves the console's static files: built with it (an empty folder for the other apps).
RUN npx nx run ${APP}:build --outputStyle=static && mkdir -p dist/apps/console \
  && if [ "${APP}" = registry-api ]; then npx nx run console:build --outputStyle=static; fi && npm prune --omit=dev

FROM ${NODE_IMAGE}
# tini as PID 1: it forwards SIGTERM to node (which, as PID 1, would get no default signal handling)
# and reaps zombies; the app then drains and exits 0 within SHUTDOWN_GRACE_MS.
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
ARG APP=registry-api
ENV NODE_ENV=production APP=${APP}
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/apps/${APP} ./dist
# Where registry-api's build looks for it (dist/apps/registry-api/src/console → ../../../../../console).
COPY --from=build /src/dist/apps/console ./console
# node's uid, numeric so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 1000:1000
ENTRYPOINT ["/usr/bin/tini", "--"]
# exec: node replaces the shell, so the signal tini forwards reaches node itself.
CMD ["sh", "-c", "exec node dist/apps/${APP}/src/main.js"]
