"""proto_gen: a studio's own Cuebot protos, compiled into the set the gateway serves.

``python -m proto_gen PROTO_DIR -o studio.pb`` compiles every ``.proto`` under
PROTO_DIR with grpcio-tools' bundled protoc into one FileDescriptorSet (imports
included), checks that the gateway can serve it, and writes it; the gateway
then serves it with ``PROTO_DESCRIPTOR_SET=studio.pb``.
``python -m proto_gen --installed -o opencue.pb`` writes the installed
opencue-proto's set, the one the gateway serves by default.
"""
