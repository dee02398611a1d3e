"""Fuzzing the OTLP/JSON decoder: any input gives rows or a clear IngestError, never a
crash; valid spans survive whatever junk surrounds them."""

from __future__ import annotations

import json
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mantissa.apm import otlp
from mantissa.errors import IngestError

NOW = time.time_ns()

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
hexish = st.one_of(
    st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=40),
    st.text(max_size=40),
    st.integers(),
    st.none(),
)
any_value = st.one_of(
    st.fixed_dictionaries({"stringValue": st.text(max_size=20)}),
    st.fixed_dictionaries(
        {"intValue": st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=8))}
    ),
    st.fixed_dictionaries({"doubleValue": st.floats(allow_nan=False)}),
    st.fixed_dictionaries({"boolValue": st.booleans()}),
    st.fixed_dictionaries({"bytesValue": st.text(max_size=12)}),
    st.fixed_dictionaries(
        {
            "arrayValue": st.fixed_dictionaries(
                {
                    "values": st.lists(
                        st.fixed_dictionaries({"stringValue": st.text(max_size=5)}), max_size=3
                    )
                }
            )
        }
    ),
    json_values,
)
spans = st.fixed_dictionaries(
    {
        "traceId": hexish,
        "spanId": hexish,
        "name": st.one_of(st.text(max_size=20), json_scalars),
        "kind": st.one_of(st.integers(-3, 9), st.sampled_from(["SPAN_KIND_SERVER", "bogus"])),
        "startTimeUnixNano": st.one_of(
            st.integers(0, 2**64), st.just(str(NOW)), st.text(max_size=10)
        ),
        "endTimeUnixNano": st.one_of(st.integers(0, 2**64), st.just(str(NOW + 10))),
        "attributes": st.lists(
            st.fixed_dictionaries({"key": st.text(max_size=10), "value": any_value}), max_size=4
        ),
    },
    optional={"parentSpanId": hexish, "status": json_values, "extra": json_values},
)
requests = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "resourceSpans": st.lists(
                st.fixed_dictionaries(
                    {
                        "scopeSpans": st.lists(
                            st.fixed_dictionaries({"spans": st.lists(spans, max_size=4)}),
                            max_size=2,
                        )
                    },
                    optional={"resource": json_values},
                ),
                max_size=2,
            )
        }
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests)
def test_json_decoder_never_crashes(doc):
    body = json.dumps(doc).encode()
    try:
        dec = otlp.decode_traces(body, otlp.JSON)
    except IngestError as exc:
        assert exc.message
        return
    assert dec.table.num_rows == dec.accepted
    assert dec.table.schema == otlp.TRACE_SCHEMA
    for tid in dec.table.column("trace_id").to_pylist():
        assert len(tid) == 32 and tid == tid.lower() and tid != "0" * 32


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_protobuf_decoder_never_crashes(body):
    try:
        dec = otlp.decode_traces(body, otlp.PROTOBUF)
    except IngestError:
        return
    assert dec.table.num_rows == dec.accepted


@settings(max_examples=100, deadline=None)
@given(junk=st.lists(spans, max_size=5))
def test_valid_span_survives_junk_neighbours(junk):
    good = {
        "traceId": "AB" * 16,
        "spanId": "cd" * 8,
        "name": "good",
        "startTimeUnixNano": str(NOW - 10**9),
        "endTimeUnixNano": str(NOW),
    }
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [*junk, good]}]}]}
    try:
        dec = otlp.decode_traces(json.dumps(doc).encode(), otlp.JSON)
    except IngestError:
        return  # a junk span of the wrong JSON type makes the whole request malformed (400)
    assert "ab" * 16 + "cd" * 8 in dec.table.column("event_id").to_pylist()
    assert dec.accepted + len(dec.rejected) >= 1
