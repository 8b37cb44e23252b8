"""opencue-gateway: the HTTP/JSON gateway in front of OpenCue's Cuebot gRPC API."""

__version__ = "0.1.0"
