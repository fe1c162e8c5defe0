# syntax=docker/dockerfile:1
# archplan image: `web` (default) serves the app after migrating; `worker` runs the solve
# worker; `migrate` only migrates (docker/entrypoint.sh).

FROM node:20-bookworm-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
RUN mkdir -p vendor/htmx vendor/pico vendor/chartjs vendor/mermaid vendor/swagger-ui \
 && cp node_modules/htmx.org/dist/htmx.min.js vendor/htmx/ \
 && cp node_modules/@picocss/pico/css/pico.min.css vendor/pico/ \
 && cp node_modules/chart.js/dist/chart.umd.js vendor/chartjs/ \
 && cp node_modules/mermaid/dist/mermaid.min.js vendor/mermaid/ \
 && cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css vendor/swagger-ui/

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements/base.txt requirements/base.txt
RUN /opt/venv/bin/pip install --require-hashes -r requirements/base.txt

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ARCHPLAN_ENVIRONMENT=production \
    ARCHPLAN_HOST=0.0.0.0 \
    ARCHPLAN_PORT=8000 \
    ARCHPLAN_DATABASE_URL=sqlite:////data/archplan.db
RUN groupadd --system --gid 10001 archplan \
 && useradd --system --uid 10001 --gid archplan --home-dir /app --shell /usr/sbin/nologin archplan \
 && mkdir -p /data && chown archplan:archplan /data
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY alembic.ini ./
COPY alembic alembic
COPY app app
COPY examples examples
COPY templates templates
COPY static static
COPY --from=assets /src/vendor static/vendor
COPY pricing_data pricing_data
COPY docker/entrypoint.sh /usr/local/bin/archplan-entrypoint
COPY docker/archplan /usr/local/bin/archplan
USER 10001:10001
EXPOSE 8000
VOLUME ["/data"]
# The web server must answer /healthz; other commands (the worker) are healthy while running.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; serving = b'serve' in open('/proc/1/cmdline', 'rb').read().split(b'\\0'); sys.exit(0 if not serving or urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["/usr/local/bin/archplan-entrypoint"]
CMD ["web"]
