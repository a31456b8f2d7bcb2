# syntax=docker/dockerfile:1
# Build: compile TypeScript with the dev dependencies.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# Everything .dockerignore lets in; the build compiles the service from its entry points, following imports.
COPY . .
RUN npm run build

# Run: production dependencies, the compiled service and the bundled model, as a non-root user.
# SageMaker's documentation expects containers to run as root: build with --build-arg RUN_AS=root for it.
FROM node:24-bookworm-slim
ARG RUN_AS=node
ENV NODE_ENV=production PORT=5000 HOST=0.0.0.0
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY models ./models
COPY dashboard ./dashboard
# The OpenAPI document's request example is examples/flows.json.
COPY examples ./examples
# Notifications that SNS cannot take in time are spilled here; mount a volume to keep them across containers.
RUN mkdir -p /app/data && chown node:node /app/data
VOLUME ["/app/data"]
USER ${RUN_AS}
# 5000 by default; 8080 when started as `serve` (SageMaker).
EXPOSE 5000 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "dist/entrypoint.js", "healthcheck"]
# Exec form, node directly (not npm): SIGTERM reaches the server, which drains before exiting, and
# `docker run <image> serve` (SageMaker) replaces CMD with `serve`.
ENTRYPOINT ["node", "dist/entrypoint.js"]
CMD ["start"]
