# opencue-gateway container image (BuildKit, the default builder since Docker 23).
#   docker build -t opencue-gateway .
#   docker run -p 8448:8448 --stop-timeout 35 -e CUEBOT_ENDPOINT=cuebot:8443 \
#     -e JWT_SECRET_FILE=/run/secrets/jwt-secret -v "$PWD/jwt-secret:/run/secrets/jwt-secret:ro" \
#     opencue-gateway
#
# Stopping: SIGTERM drains (DRAIN_DELAY, 5s by default, then up to SHUTDOWN_GRACE, 20s, for calls
# in flight) and exits 0. Docker kills a container 10s after SIGTERM unless told otherwise, so
# give it longer than DRAIN_DELAY + SHUTDOWN_GRACE: `docker run --stop-timeout 35`,
# `docker stop -t 35`, or `stop_grace_period: 35s` in a compose file.
#
# The base image is pinned by its full version tag. A digest would pin it byte for byte: look
# it up where you build (`docker buildx imagetools inspect python:3.11.7-slim-bookworm`) and
# append it (`python:3.11.7-slim-bookworm@sha256:...`). Raise the tag for Python's patch
# releases (3.11.7 is the version the test suite passed on; 3.12 and 3.13 are not yet
# supported).
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

# Stage 1: the gateway's wheel and a wheel of every dependency at its pinned version.
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY constraints.txt setup.cfg pyproject.toml README.md ./
COPY opencue_gateway ./opencue_gateway
COPY proto_gen ./proto_gen
COPY twisted/plugins/opencue_gateway_plugin.py ./twisted/plugins/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && pip wheel --no-cache-dir --constraint constraints.txt --wheel-dir /wheels /wheels/opencue_gateway-*.whl \
    && cp constraints.txt /wheels/

# Stage 2: the runtime. A virtualenv installed from stage 1's wheels alone (no index, no
# compiler, no pip cache), owned by root and only readable by the gateway's user.
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin gateway
# The twistd plugin cache is built here, as root: the gateway's user cannot write it later,
# and without it every start would try (and log a failure to write the cache).
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/opencue-gateway \
    && /opt/opencue-gateway/bin/pip install --no-cache-dir --no-index --find-links /wheels \
       --constraint /wheels/constraints.txt opencue-gateway \
    && /opt/opencue-gateway/bin/python -c "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))"
ENV PATH=/opt/opencue-gateway/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001
EXPOSE 8448
# Alive while the process answers HTTP (the image has no curl: Python's urllib asks).
# It follows REST_PORT, and TLS_CERT_FILE (then over HTTPS, not verifying the certificate of
# the gateway's own loopback address). With LISTEN, override it (docker run --health-cmd).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, ssl, urllib.request; tls = bool(os.environ.get('TLS_CERT_FILE')); urllib.request.urlopen(('https' if tls else 'http') + '://127.0.0.1:' + os.environ.get('REST_PORT', '8448') + '/healthz', timeout=4, context=ssl._create_unverified_context() if tls else None)"]
STOPSIGNAL SIGTERM
# --pidfile= : a stale twistd.pid in a restarted container would stop start-up.
CMD ["twistd", "-n", "--pidfile=", "opencue-gateway"]
