"""The twistd plugin for `twistd opencue-gateway`.

Kept inert on purpose: twistd imports every plugin module to build its
dropin cache, so this module names the real code by string and ServiceMaker
imports it only when the plugin is used.
"""

from twisted.application.service import ServiceMaker

OpenCueGateway = ServiceMaker(
    "OpenCue Gateway",
    "opencue_gateway.service",
    "HTTP/JSON gateway in front of OpenCue's Cuebot gRPC API.",
    "opencue-gateway",
)
