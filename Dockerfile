# syntax=docker/dockerfile:1
# Build stage: compile TypeScript and the better-sqlite3 native addon.
FROM node:22-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY simulator ./simulator
COPY scripts ./scripts
COPY test ./test
COPY bench ./bench
COPY migrations ./migrations
RUN npm run build && npm prune --omit=dev

# Runtime stage: only what runs.
FROM node:22-bookworm-slim
ENV NODE_ENV=production ARCHIVER_DB_PATH=/var/lib/envoy-archiver/archiver.db
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/migrations ./migrations
RUN mkdir -p /var/lib/envoy-archiver && chown node:node /var/lib/envoy-archiver
USER node
VOLUME ["/var/lib/envoy-archiver"]
EXPOSE 9464
# The default command is the scheduled worker, whose /healthz this checks. One-shot `run` containers (cron,
# Kubernetes CronJob) override the command; Kubernetes ignores HEALTHCHECK.
HEALTHCHECK --interval=30s --timeout=5s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.ARCHIVER_METRICS_PORT || 9464) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["worker", "--cron", "17 * * * *", "--run-on-start"]
