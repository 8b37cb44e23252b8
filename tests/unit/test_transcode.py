"""The JSON mapping of COMPATIBILITY.md sections 2-3, byte for byte where bytes matter."""

from __future__ import annotations

import json
import math
import random
import struct
import zlib

import grpc
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from opencue_proto import department_pb2, host_pb2, job_pb2, limit_pb2, show_pb2

from bench.data import SEED, make_jobs
from opencue_gateway.compression import GzipStream
from opencue_gateway.errors import GatewayError
from opencue_gateway.largereply import PIECE_BYTES, STREAM_MIN_BYTES, LargeReplies
from opencue_gateway.transcode import (
    MAX_NESTING,
    Transcoder,
    bytes_json,
    float32_json,
    float64_json,
    json_bytes,
)
from opencue_gateway.wire import Shape
from tests.populate import populate
from tests.unit.test_wire import descriptor as wide_descriptor


@pytest.fixture(scope="module")
def transcoder() -> Transcoder:
    return Transcoder()


def f32(value: float) -> float:
    """The float32 nearest ``value``, as protobuf stores a float field."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


def dumps(value: object) -> bytes:
    import orjson

    return orjson.dumps(value)


# -- encoding -----------------------------------------------------------------

def test_get_shows_prints_like_grpc_gateway(transcoder):
    """GetShows keeps the double nesting, prints every scalar, int64 as strings, no spaces."""
    reply = show_pb2.ShowGetShowsResponse(shows=show_pb2.ShowSeq(shows=[show_pb2.Show(
        id="00000000-0000-0000-0000-000000000000", name="testing", default_min_cores=1,
        default_max_cores=2000, booking_enabled=True, dispatch_enabled=True, active=True,
        show_stats=show_pb2.ShowStats(pending_frames=6, pending_jobs=1, created_job_count=44,
                                      created_frame_count=499),
        default_min_gpus=100, default_max_gpus=100000)]))
    assert transcoder.encode(reply) == (
        b'{"shows":{"shows":[{"id":"00000000-0000-0000-0000-000000000000","name":"testing",'
        b'"defaultMinCores":1,"defaultMaxCores":2000,"commentEmail":"","bookingEnabled":true,'
        b'"dispatchEnabled":true,"active":true,"showStats":{"runningFrames":0,"deadFrames":0,'
        b'"pendingFrames":6,"pendingJobs":1,"createdJobCount":"44","createdFrameCount":"499",'
        b'"renderedFrameCount":"0","failedFrameCount":"0","reservedCores":0,"reservedGpus":0},'
        b'"defaultMinGpus":100,"defaultMaxGpus":100000,"schedulerManaged":false}]}}'
    )


def test_unset_message_fields_are_null(transcoder):
    """An unset singular message prints as null, at the top and inside a list element."""
    assert transcoder.encode(job_pb2.FrameGetFrameResponse()) == b'{"frame":null}'
    frames = job_pb2.JobGetFramesResponse(frames=job_pb2.FrameSeq(frames=[job_pb2.Frame()]))
    assert json.loads(transcoder.encode(frames))["frames"]["frames"][0][
        "frameStateDisplayOverride"] is None


def test_empty_repeated_fields_are_empty_lists(transcoder):
    """An empty list prints as [] and an empty message as {}."""
    assert transcoder.encode(show_pb2.ShowSeq()) == b'{"shows":[]}'
    assert transcoder.encode(job_pb2.JobKillResponse()) == b"{}"


def test_unset_oneof_is_omitted_and_set_oneof_printed(transcoder):
    """Job.uid lives in a oneof: absent when unset, printed in its declared place when set."""
    unset = json.loads(transcoder.encode(job_pb2.Job(name="j")))
    assert "uid" not in unset
    keys = list(json.loads(transcoder.encode(job_pb2.Job(name="j", uid=0))))
    assert keys[keys.index("os") + 1] == "uid"


def test_enums_print_by_name_and_unknown_numbers_as_numbers(transcoder):
    """Known enum values are names; a number with no name (a newer Cuebot) stays a number."""
    assert json.loads(transcoder.encode(job_pb2.Frame(state=job_pb2.WAITING)))["state"] == "WAITING"
    assert json.loads(transcoder.encode(job_pb2.Frame(state=99)))["state"] == 99


def test_int64_prints_as_string_and_int32_as_number(transcoder):
    """64-bit integers are JSON strings (JavaScript cannot hold them); 32-bit are numbers."""
    frame = json.loads(transcoder.encode(job_pb2.Frame(max_rss=2**62, exit_status=-1)))
    assert frame["maxRss"] == str(2**62)
    assert frame["exitStatus"] == -1


def test_bytes_print_as_padded_base64(transcoder):
    """bytes fields print as standard base64 with padding."""
    proc = json.loads(transcoder.encode(host_pb2.Proc(child_processes=b"\x00\xffa")))
    assert proc["childProcesses"] == "AP9h"
    assert bytes_json(b"a") == "YQ=="


def test_maps_print_sorted_by_key(transcoder):
    """Map entries print in key order, as protojson does."""
    request = department_pb2.DeptAddTasksRequest(tmap={"zeta": 15, "alpha": 2})
    assert transcoder.encode(request).endswith(b'"tmap":{"alpha":2,"zeta":15}}')


def test_strings_escape_like_protojson(transcoder):
    """Control characters and DEL are escaped, non-ASCII and '<>&' are raw UTF-8."""
    body = transcoder.encode(show_pb2.Show(name='a"\\\n\x01\x7f<>&é\u2028'))
    assert b'"name":"a\\"\\\\\\n\\u0001\\u007f<>&\xc3\xa9\xe2\x80\xa8"' in body


@pytest.mark.parametrize(("value", "text"), [
    (0.1, b"0.1"), (1.0, b"1"), (2000.0, b"2000"), (0.0, b"0"), (-0.0, b"-0"),
    (1.5, b"1.5"), (123456.7, b"123456.7"), (16777216.0, b"16777216"),
    (1e21, b"1e+21"), (1.5e-7, b"1.5e-7"), (1e-6, b"0.000001"), (3.4028234663852886e38,
     b"3.4028235e+38"), (1.2345678e15, b"1234567800000000"), (1.401298464324817e-45, b"1e-45"),
    (math.nan, b'"NaN"'), (math.inf, b'"Infinity"'), (-math.inf, b'"-Infinity"'),
])
def test_float32_prints_shortest_like_go(value, text):
    """float fields print Go's shortest float32 form: no '.0', 'e+21' above 1e21, '-0'."""
    assert dumps(float32_json(f32(value))) == text


@pytest.mark.parametrize(("value", "text"), [
    (0.1, b"0.1"), (1e20, b"100000000000000000000"), (1e21, b"1e+21"), (1e-7, b"1e-7"),
    (123456789.125, b"123456789.125"), (-2.5, b"-2.5"), (2**53 + 2.0, b"9007199254740994"),
    (5e-324, b"5e-324"),
])
def test_float64_prints_shortest_like_go(value, text):
    """double fields print Go's shortest float64 form."""
    assert dumps(float64_json(value)) == text


def test_keys_follow_declaration_order_for_every_message(transcoder, catalog):
    """Every message prints fields in declaration order (not by number: see ProcSearchCriteria)."""
    seen: set[str] = set()

    def check(descriptor):
        if descriptor.full_name in seen or descriptor.GetOptions().map_entry:
            return
        seen.add(descriptor.full_name)
        message = json_format.ParseDict({}, _message_class(descriptor)())
        printed = list(json.loads(transcoder.encode(message)))
        declared = [f.json_name for f in descriptor.fields if f.containing_oneof is None]
        assert printed == declared, descriptor.full_name
        for field in descriptor.fields:
            if field.message_type is not None:
                check(field.message_type)

    for method in catalog:
        check(method.input_type.DESCRIPTOR)
        check(method.output_type.DESCRIPTOR)
    assert "host.ProcSearchCriteria" in seen


def test_list_reply_encodes_element_by_element(transcoder):
    """A list reply's bytes are its elements' encodings spliced in, so it can be streamed."""
    frames = [job_pb2.Frame(name=f"f{i}\x7f", state=job_pb2.RUNNING, max_rss=2**40 + i,
                            used_memory=i) for i in range(3)]
    reply = job_pb2.JobGetFramesResponse(frames=job_pb2.FrameSeq(frames=frames))
    outer = transcoder.contract.message(reply.DESCRIPTOR).fields[0]
    inner = outer.value.message.fields[0]
    assert inner.shape is Shape.LIST
    encoder = transcoder.encoder_for(job_pb2.Frame.DESCRIPTOR)
    pieces = [json_bytes(encoder(frame)) for frame in frames]
    spliced = (b'{"%s":{"%s":[' % (outer.json_name.encode(), inner.json_name.encode())
               + b",".join(pieces) + b"]}}")
    assert spliced == transcoder.encode(reply)
    assert b"\\u007f" in pieces[0]


def _message_class(descriptor):
    return GetMessageClass(descriptor)


# -- decoding -----------------------------------------------------------------

def test_both_name_styles_decode(transcoder):
    """lowerCamelCase and proto field names set the same fields."""
    camel = transcoder.decode(job_pb2.JobGetFramesRequest,
                              b'{"job":{"id":"j"},"req":{"includeFinished":true,"page":1}}')
    snake = transcoder.decode(job_pb2.JobGetFramesRequest,
                              b'{"job":{"id":"j"},"req":{"include_finished":true,"page":1}}')
    assert camel.message == snake.message
    assert camel.message.req.include_finished is True


def test_empty_body_is_the_empty_message(transcoder):
    """No body, or only whitespace, is the empty request, as in grpc-gateway."""
    for body in (b"", b"  \n"):
        assert transcoder.decode(show_pb2.ShowGetShowsRequest, body).message == \
            show_pb2.ShowGetShowsRequest()


def test_enums_decode_by_name_or_number(transcoder):
    """Enum values may be names or numbers."""
    decoded = transcoder.decode(job_pb2.FrameSearchCriteria,
                                b'{"states":{"frameStates":["DEAD",2]}}')
    assert list(decoded.message.states.frame_states) == [job_pb2.DEAD, job_pb2.RUNNING]


def test_int64_decodes_from_strings_and_numbers(transcoder):
    """64-bit integers may come as strings or numbers; integral floats are integers."""
    for body in (b'{"maxRss":"9007199254740993"}', b'{"maxRss":9007199254740993}'):
        assert transcoder.decode(job_pb2.Frame, body).message.max_rss == 9007199254740993
    assert transcoder.decode(job_pb2.Frame, b'{"number":1e2}').message.number == 100


def test_unknown_fields_are_ignored_and_reported(transcoder):
    """Unknown fields and enum names are dropped and listed as dotted paths."""
    decoded = transcoder.decode(
        job_pb2.JobGetFramesRequest,
        b'{"job":{"id":"j","color":"red"},"req":{"states":{"frameStates":["WAITING","NOPE"]}},'
        b'"extra":[1]}',
    )
    assert decoded.message.job.id == "j"
    assert list(decoded.message.req.states.frame_states) == [job_pb2.WAITING]
    assert decoded.ignored_fields == ("job.color", "req.states.frameStates[1]", "extra")


def test_strict_mode_rejects_unknown_fields():
    """STRICT_JSON turns a dropped field into a 400 naming it."""
    with pytest.raises(GatewayError) as caught:
        Transcoder(strict=True).decode(job_pb2.JobGetJobsRequest, b'{"r":{"show":{"name":"x"}}}')
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "'r.show'" in caught.value.message


@pytest.mark.parametrize(("body", "words"), [
    (b"{", "not valid JSON"),
    (b"[1]", "must be a JSON object, got an array"),
    (b"null", "must be a JSON object, got null"),
    (b'"x"', "must be a JSON object, got a string"),
    (b'{"a":1} x', "not valid JSON"),
    (b'{"job":"x"}', "field 'job': expected a Job object, got a string"),
    (b'{"job":{"id":5}}', "field 'job.id': expected a string, got a number"),
    (b'{"req":{"page":"one"}}', "field 'req.page': expected a 32-bit integer, got a string"),
    (b'{"req":{"page":1.5}}', "field 'req.page': expected a 32-bit integer"),
    (b'{"req":{"page":4294967296}}', "'req.page'"),
    (b'{"req":{"page":123456789012345678901234567890}}', "out of range"),
    (b'{"req":{"includeFinished":"true"}}', "field 'req.includeFinished': expected true or false"),
    (b'{"req":{"ids":"x"}}', "field 'req.ids': expected an array"),
    (b'{"req":{"ids":[null]}}', "field 'req.ids[0]'"),
    (b'{"req":{"states":{"frameStates":[true]}}}', "FrameState name or number"),
    (b'{"job":{"minCores":1e39}}', "out of range"),
    (b'{"job":{"id":"a","id":"b"}}', None),
    (b'{"job":{"logDir":"a","log_dir":"b"}}', "given twice"),
    (b'{"job":{"uid":1,"uid":2}}', None),
])
def test_bad_bodies_get_400_naming_the_field(transcoder, body, words):
    """Malformed JSON, non-objects and wrong types are 400s whose message names the problem."""
    if words is None:
        # Duplicate JSON keys: the last one wins, as with most JSON parsers.
        transcoder.decode(job_pb2.JobGetFramesRequest, body)
        return
    with pytest.raises(GatewayError) as caught:
        transcoder.decode(job_pb2.JobGetFramesRequest, body)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert words in caught.value.message


def test_null_leaves_a_field_unset(transcoder):
    """null for a field means "not set", for scalars, messages and lists alike."""
    decoded = transcoder.decode(job_pb2.JobGetFramesRequest,
                                b'{"job":null,"req":{"page":null,"ids":null}}')
    assert not decoded.message.HasField("job")
    assert decoded.message.req.page == 0


def test_empty_object_sets_message_presence(transcoder):
    """{} for a message field sets it (present but empty), unlike null."""
    decoded = transcoder.decode(job_pb2.JobGetFramesRequest, b'{"req":{}}')
    assert decoded.message.HasField("req")


def test_floats_accept_strings_and_special_words(transcoder):
    """float fields accept numbers, numeric strings and NaN/Infinity words."""
    job = transcoder.decode(job_pb2.Job, b'{"minCores":"1.5","maxCores":"Infinity"}').message
    assert job.min_cores == 1.5 and math.isinf(job.max_cores)


def test_bytes_accept_url_safe_and_unpadded_base64(transcoder):
    """bytes fields accept standard or URL-safe base64, padded or not, as protojson does."""
    for text in ("AP9h", "_w", "/w==", "/w", "-_8="):
        transcoder.decode(host_pb2.Proc, json.dumps({"childProcesses": text}).encode())
    assert transcoder.decode(host_pb2.Proc, b'{"childProcesses":"_w"}').message.child_processes \
        == b"\xff"


@pytest.mark.parametrize("text", ["***", "AP9h==", "+_w=", "/w="])
def test_bytes_refuse_what_protojson_refuses(transcoder, text):
    """Not base64, padding on a length that needs none, a mixed alphabet, short padding:
    400 (protojson refuses each; Python's base64 accepts some, and 3.11 and 3.13 differ)."""
    with pytest.raises(GatewayError):
        transcoder.decode(host_pb2.Proc, json.dumps({"childProcesses": text}).encode())


def test_maps_decode_with_typed_keys(transcoder):
    """Map objects decode into map fields."""
    decoded = transcoder.decode(department_pb2.DeptAddTasksRequest, b'{"tmap":{"a":15}}')
    assert dict(decoded.message.tmap) == {"a": 15}


def test_deep_nesting_is_refused_not_crashed(transcoder):
    """A body nesting messages past the limit is a 400, never a RecursionError."""
    depth = MAX_NESTING + 5
    body = b'{"parent":' * depth + b"{}" + b"}" * depth
    with pytest.raises(GatewayError) as caught:
        transcoder.decode(job_pb2.NestedGroup, body)
    assert "deeper than" in caught.value.message


def test_lone_surrogates_are_refused(transcoder):
    """A string protobuf cannot store is a 400, not a crash."""
    with pytest.raises(GatewayError) as caught:
        transcoder.decode(job_pb2.Job, b'{"name":"\\ud800"}')
    assert "not valid Unicode" in caught.value.message


@pytest.mark.parametrize("body", [
    b'{"maxRss": -9223372036854775809}', b'{"maxRss": 18446744073709551616}',
    b'{"number": 99999999999999999999}',
])
def test_integers_past_64_bits_are_out_of_range_not_rounded(transcoder, body):
    """A too-wide integer is a 400 naming the field, never silently rounded to fit."""
    with pytest.raises(GatewayError) as caught:
        transcoder.decode(job_pb2.Frame, body)
    assert "out of range" in caught.value.message


def test_lone_surrogate_enum_names_are_unknown_names(transcoder):
    """An enum name protobuf cannot look up is an unknown name (dropped, or a 400 when strict)."""
    decoded = transcoder.decode(job_pb2.Frame, b'{"state": "\\ud800"}')
    assert decoded.ignored_fields == ("state",)
    with pytest.raises(GatewayError) as caught:
        Transcoder(strict=True).decode(job_pb2.Frame, b'{"state": "\\ud800"}')
    assert "unknown FrameState value" in caught.value.message


@pytest.mark.parametrize(("body", "words"), [
    (b'{"int64value": {"value": 1}}', "'int64value': expected google.protobuf.Int64Value in its "
                                      "JSON form, got an object"),
    (b'{"int64value": "x"}', "expected google.protobuf.Int64Value in its JSON form, got a string"),
    (b'{"any": 5}', "'any': expected google.protobuf.Any in its JSON form, got a number"),
    (b'{"empty": true}', "got a boolean"),
    (b'{"bytesvalue": "x"}', "'bytesvalue': expected google.protobuf.BytesValue"),
    (b'{"floatvalue": [1]}', "got an array"),
    (b'{"timestamp": 5}', "invalid value for field 'timestamp': Timestamp JSON value not a string"),
])
def test_malformed_well_known_values_are_400s(transcoder, body, words):
    """A well-known type given the wrong JSON type is a 400 naming the field, not a crash."""
    known = GetMessageClass(wide_descriptor("wide.Known"))
    with pytest.raises(GatewayError) as caught:
        transcoder.decode(known, body)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert words in caught.value.message
    good = transcoder.decode(known, b'{"timestamp": "2024-01-02T03:04:05Z", "int64value": "5"}')
    assert good.message.timestamp.seconds == 1704164645 and good.message.int64value.value == 5


def test_non_ascii_digits_are_not_numbers(transcoder):
    """"1٣" is not an integer (Python's isdigit would say it is)."""
    with pytest.raises(GatewayError):
        transcoder.decode(job_pb2.Frame, b'{"number": "1\\u0663"}')


def test_long_digit_runs_inside_strings_still_parse(transcoder):
    """A 20-digit id inside a string takes the exact path and decodes normally."""
    decoded = transcoder.decode(job_pb2.Frame, b'{"id": "12345678901234567890", "maxRss": "5"}')
    assert decoded.message.id == "12345678901234567890" and decoded.message.max_rss == 5


# -- large replies, streamed from their serialized bytes ----------------------

def _streamed(transcoder: Transcoder, message: Message, gzip: bool = False,
              data: bytes | None = None) -> list[bytes]:
    """The chunks a large reply is sent in, whatever its size (no threshold)."""
    data = message.SerializeToString() if data is None else data
    reply = LargeReplies(transcoder, min_bytes=0).reply(type(message), data, gzip)
    assert reply is not None, f"{message.DESCRIPTOR.full_name} has no list to stream"
    return list(reply.chunks())


@pytest.mark.parametrize("name", ["jobs", "frames", "hosts"])
def test_large_replies_stream_byte_identical(transcoder, production_replies, name):
    """Production-size list replies stream past the threshold, in bounded chunks, and
    join to exactly the unstreamed encoding."""
    message = production_replies[name]
    data = message.SerializeToString()
    assert len(data) >= STREAM_MIN_BYTES
    reply = LargeReplies(transcoder).reply(type(message), data, gzip=False)
    assert reply is not None
    chunks = list(reply.chunks())
    whole = transcoder.encode(message)
    assert b"".join(chunks) == whole
    assert len(chunks) > 10
    assert max(len(chunk) for chunk in chunks) < 2 * PIECE_BYTES


@pytest.mark.parametrize("name", ["jobs", "frames", "hosts"])
def test_large_replies_gzip_as_one_stream(transcoder, production_replies, name):
    """Gzipped, the chunks are one gzip stream that inflates to the unstreamed encoding,
    and each chunk inflates on its own as it arrives."""
    message = production_replies[name]
    chunks = _streamed(transcoder, message, gzip=True)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    inflated = [inflater.decompress(chunk) for chunk in chunks]
    assert inflater.eof
    assert all(inflated[:-1])
    assert b"".join(inflated) == transcoder.encode(message)


def test_small_replies_and_types_without_a_list_are_not_streamed(transcoder, production_replies):
    """Below the threshold, or without a list to stream, a reply is encoded whole."""
    large = LargeReplies(transcoder)
    small = make_jobs(random.Random(SEED), 10)
    assert large.reply(type(small), small.SerializeToString(), False) is None
    padding = show_pb2.ShowFindShowResponse(show=show_pb2.Show(name="x" * STREAM_MIN_BYTES))
    assert large.plan(padding.DESCRIPTOR) is None
    assert large.reply(type(padding), padding.SerializeToString(), False) is None


def test_every_list_reply_of_the_catalog_streams_identically(transcoder, catalog):
    """Every reply type with a list, fully populated and empty, streams to its whole encoding."""
    plans = LargeReplies(transcoder, min_bytes=0)
    streamed = 0
    for output_type in {method.output_type for method in catalog}:
        if plans.plan(output_type.DESCRIPTOR) is None:
            continue
        streamed += 1
        for message in (populate(output_type(), 1), populate(output_type(), 2), output_type()):
            assert b"".join(_streamed(transcoder, message)) == transcoder.encode(message), \
                output_type.DESCRIPTOR.full_name
    assert streamed > 50


def test_absent_and_empty_lists_print_as_the_whole_encoding(transcoder):
    """An unset spine message prints null, an empty one prints its empty list."""
    for message in (job_pb2.JobGetJobsResponse(),
                    job_pb2.JobGetJobsResponse(jobs=job_pb2.JobSeq())):
        joined = b"".join(_streamed(transcoder, message))
        assert joined == transcoder.encode(message)
    assert b"".join(_streamed(transcoder, job_pb2.JobGetJobsResponse())) == b'{"jobs":null}'


def test_repeated_occurrences_merge_as_protobuf_does(transcoder):
    """Two serialized replies concatenated are one reply whose lists append."""
    first = make_jobs(random.Random(1), 3)
    second = make_jobs(random.Random(2), 4)
    data = first.SerializeToString() + second.SerializeToString()
    merged = job_pb2.JobGetJobsResponse.FromString(data)
    assert len(merged.jobs.jobs) == 7
    assert b"".join(_streamed(transcoder, merged, data=data)) == transcoder.encode(merged)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited field as protobuf serializes it (short payloads)."""
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


def test_fields_around_and_between_the_elements_keep_their_place(transcoder):
    """Fields off the list, before, between and after its elements, unknown fields
    included, print where and as the whole encoding prints them."""
    limit = limit_pb2.Limit(name="gpu\x7f", max_value=4, current_running=2).SerializeToString()
    skip = limit_pb2.LimitReportSkip(limit_name="ram", reason=limit_pb2.OUT_OF_ORDER)
    skip = skip.SerializeToString()
    data = (_field(2, b"before") + _field(1, limit) + _field(3, skip) + _field(1, limit)
            + b"\xc8\x01\x05" + _field(2, b"after") + _field(1, b""))
    message = limit_pb2.LimitReportUsageResponse.FromString(data)
    assert len(message.limits) == 3
    joined = b"".join(_streamed(transcoder, message, data=data))
    assert joined == transcoder.encode(message)
    assert b"\\u007f" in joined


def test_replies_the_walk_cannot_follow_are_encoded_whole(transcoder):
    """A field of a wire type the walk does not follow (a group) falls back to the whole
    encoding; bytes that are no reply at all are a clear error."""
    jobs = make_jobs(random.Random(3), 2)
    with_group = jobs.SerializeToString() + b"\xa3\x06\xa4\x06"  # field 100 as an empty group
    message = job_pb2.JobGetJobsResponse.FromString(with_group)
    assert b"".join(_streamed(transcoder, message, data=with_group)) == \
        transcoder.encode(message)
    with pytest.raises(GatewayError) as caught:
        _streamed(transcoder, jobs, data=jobs.SerializeToString()[:-3])
    assert caught.value.code == grpc.StatusCode.INTERNAL
    assert "job.JobGetJobsResponse" in caught.value.message


def test_an_element_that_cannot_be_parsed_fails_after_the_earlier_chunks(transcoder):
    """A bad element deep in the list is found when its batch is read: the chunks
    before it come out first, then the error."""
    jobs = make_jobs(random.Random(4), 3_000)
    data = bytearray(jobs.SerializeToString())
    name = jobs.jobs.jobs[2_500].name.encode()
    at = data.index(name)
    data[at] = 0xFF  # not UTF-8: the string field cannot be parsed
    reply = LargeReplies(transcoder, min_bytes=0).reply(type(jobs), bytes(data), False)
    chunks = reply.chunks()
    assert next(chunks).startswith(b'{"jobs":{"jobs":[{')
    with pytest.raises(GatewayError) as caught:
        list(chunks)
    assert caught.value.code == grpc.StatusCode.INTERNAL


def test_gzip_stream_pieces_inflate_as_they_come():
    """Each piece of a GzipStream is complete: it inflates before the next one exists."""
    stream = GzipStream()
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pieces = [b'{"a":', b"[1,2,3]" * 1000, b"}"]
    out = [inflater.decompress(stream.compress(piece)) for piece in pieces[:-1]]
    out.append(inflater.decompress(stream.finish(pieces[-1])))
    assert out == pieces
    assert inflater.eof
