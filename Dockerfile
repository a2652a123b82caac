# One image per app: docker build --build-arg APP=registry-api -t switchboard/registry-api .
# Node 24 is the current LTS; the code also runs on Node 20.19+ (development machines).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
ARG APP=registry-api
RUN npx nx run ${APP}:build --outputStyle=static && npm prune --omit=dev

FROM ${NODE_IMAGE}
ARG APP=registry-api
ENV NODE_ENV=production APP=${APP}
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/apps/${APP} ./dist
USER node
CMD ["sh", "-c", "exec node dist/apps/${APP}/src/main.js"]
