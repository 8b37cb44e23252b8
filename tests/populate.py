"""Deterministic, fully populated protobuf messages for whole-catalog tests.

Every field gets a value that is not its default: strings, numbers of each
width (float values exact in float32), enums other than zero, two elements
per list and map, one member of each oneof, nested messages down to a depth
limit (OpenCue has recursive types such as NestedGroup).
"""

from __future__ import annotations

import random

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

_C = FieldDescriptor
MAX_DEPTH = 3


def populate(message: Message, seed: int = 1, depth: int = 0) -> Message:
    """Fill every field of ``message`` (recursively) and return it."""
    rng = random.Random(f"{message.DESCRIPTOR.full_name}:{seed}:{depth}")
    done_oneofs: set[str] = set()
    for field in message.DESCRIPTOR.fields:
        oneof = field.containing_oneof
        if oneof is not None:
            if oneof.name in done_oneofs:
                continue
            done_oneofs.add(oneof.name)
        if field.message_type is not None and depth >= MAX_DEPTH:
            continue
        _fill(message, field, rng, seed, depth)
    return message


def _fill(message: Message, field: FieldDescriptor, rng: random.Random, seed: int,
          depth: int) -> None:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        container = getattr(message, field.name)
        for _ in range(2):
            key = _scalar(key_field, rng)
            if value_field.message_type is not None:
                populate(container[key], seed, depth + 1)
            else:
                container[key] = _scalar(value_field, rng)
    elif field.is_repeated:
        container = getattr(message, field.name)
        for index in range(2):
            if field.message_type is not None:
                populate(container.add(), seed + index, depth + 1)
            else:
                container.append(_scalar(field, rng))
    elif field.message_type is not None:
        populate(getattr(message, field.name), seed, depth + 1)
    else:
        setattr(message, field.name, _scalar(field, rng))


def _scalar(field: FieldDescriptor, rng: random.Random) -> object:
    cpp = field.cpp_type
    if field.type == _C.TYPE_BYTES:
        return bytes(rng.randrange(256) for _ in range(5))
    if cpp == _C.CPPTYPE_STRING:
        return f"{field.name}-{rng.randrange(10**6)}-é"
    if cpp == _C.CPPTYPE_BOOL:
        return True
    if cpp == _C.CPPTYPE_ENUM:
        values = [v.number for v in field.enum_type.values if v.number != 0]
        return rng.choice(values or [0])
    if cpp in (_C.CPPTYPE_FLOAT, _C.CPPTYPE_DOUBLE):
        return rng.randrange(-4000, 4000) / 8 or 0.125
    if cpp == _C.CPPTYPE_INT32:
        return rng.randrange(-(2**31), 2**31) or 1
    if cpp == _C.CPPTYPE_UINT32:
        return rng.randrange(1, 2**32)
    if cpp == _C.CPPTYPE_INT64:
        return rng.randrange(-(2**63), 2**63) or 1
    return rng.randrange(1, 2**64)
