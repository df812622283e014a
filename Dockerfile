# Tollway: one image for every node. Build: docker build -t tollway .
# Run:   docker run -p 8080:8080 -v tollway-data:/data tollway          (SQLite, one node)
# Scale: deploy/compose.yaml (two nodes, PostgreSQL, Redis, nginx); docs/deployment.md.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/tollway \
 && /opt/tollway/bin/pip install --upgrade pip \
 && /opt/tollway/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/tollway/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TOLLWAY_HOST=0.0.0.0 \
    TOLLWAY_PORT=8080 \
    TOLLWAY_DATA_DIR=/data \
    TOLLWAY_LOG_FORMAT=json
RUN groupadd --system --gid 10001 tollway \
 && useradd --system --uid 10001 --gid tollway --home-dir /data --shell /usr/sbin/nologin tollway \
 && mkdir -p /data && chown tollway:tollway /data
COPY --from=build /opt/tollway /opt/tollway
USER tollway:tollway
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# /readyz: started, accepting, settlements committing, database reachable (docs/reliability.md)
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('TOLLWAY_PORT', '8080')}/readyz\", timeout=2)"]
# SIGTERM: graceful shutdown (in-flight calls finish within TOLLWAY_SHUTDOWN_GRACE_S, the node
# lease is deleted so the next node starts at once).
STOPSIGNAL SIGTERM
ENTRYPOINT ["tollway"]
CMD ["serve"]
