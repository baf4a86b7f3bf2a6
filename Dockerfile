# news-monitor: the daemon in a slim container. Volumes: /data/articles (watched), /data/state (SQLite),
# /app/config (settings and rules). Health: /healthz on the local port.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

WORKDIR /app
# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir monitor && touch monitor/__init__.py && pip install . && pip uninstall -y news-monitor && rm -r monitor
COPY monitor ./monitor
COPY config ./config
RUN pip install --no-deps . \
    && groupadd --system --gid 10001 monitor \
    && useradd --system --uid 10001 --gid 10001 --home /app monitor \
    && mkdir -p /data/articles /data/state \
    && chown -R 10001:10001 /data

# Numeric, so that a runtime can verify it is not root without reading /etc/passwd (runAsNonRoot).
USER 10001:10001
# The daemon listens on 127.0.0.1 by default; the image listens on 0.0.0.0 so that the container's port can
# be published at all. Keep it private: publish it to the host's loopback (-p 127.0.0.1:8787:8787) or only to
# the orchestrator's network, never to the internet (no authentication; /metrics names rules and webhooks).
ENV MONITOR_WATCH__FOLDERS='["/data/articles"]' \
    MONITOR_STATE__URL=sqlite:////data/state/monitor.db \
    MONITOR_HTTP__HOST=0.0.0.0 \
    MONITOR_HTTP__PORT=8787 \
    MONITOR_LOG__FORMAT=json
VOLUME ["/data/articles", "/data/state"]
EXPOSE 8787
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["news-monitor", "health"]
ENTRYPOINT ["news-monitor", "run"]
