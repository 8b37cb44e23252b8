# opencue-gateway container image.
#   docker build -t opencue-gateway .
#   docker run -p 8448:8448 -e CUEBOT_ENDPOINT=cuebot:8443 -e JWT_SECRET=... opencue-gateway
FROM python:3.11-slim

RUN useradd --system --uid 1000 --home-dir /nonexistent gateway
WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY opencue_gateway ./opencue_gateway
COPY twisted ./twisted
RUN pip install --no-cache-dir . \
    # Build twistd's plugin cache now: the unprivileged user cannot write it later.
    && python -c "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))" \
    && rm -rf /src

USER gateway
EXPOSE 8448
# --pidfile= : a stale twistd.pid in a restarted container would stop start-up.
CMD ["twistd", "-n", "--pidfile=", "opencue-gateway"]
