"""include/officeflow/tracing.py: the carriers a DAG run and its task instances get to continue a trace."""

from __future__ import annotations

import secrets

from include.officeflow import tracing


def parts(carrier: dict[str, str]) -> list[str]:
    return carrier["traceparent"].split("-")


def test_outside_a_trace_there_is_no_carrier_and_no_traceparent():
    assert tracing.run_carrier() is None
    assert tracing.current_traceparent() is None


def test_a_run_carrier_keeps_the_trace_and_its_sampling_with_a_span_id_of_its_own():
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    for flags in ("01", "00"):
        with tracing.span("work", traceparent=f"00-{trace_id}-{parent}-{flags}"):
            current = tracing.current_traceparent()
            run = tracing.run_carrier()
        assert run is not None and current is not None
        version, run_trace, run_span, run_flags = parts(run)
        assert (version, run_trace, run_flags) == ("00", trace_id, flags)
        assert run_span not in (parent, current.split("-")[2])
        tasks = [tracing.task_carrier(run) for _ in range(3)]
        assert {(p[1], p[3]) for p in map(parts, tasks)} == {(trace_id, flags)}
        assert len({p[2] for p in map(parts, tasks)} | {run_span}) == 4


def test_a_traceparent_header_is_read_case_insensitively_and_a_bad_one_is_ignored():
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    good = tracing.extract({"TraceParent": f"00-{trace_id}-{parent}-01"})
    from opentelemetry import trace

    assert f"{trace.get_current_span(good).get_span_context().trace_id:032x}" == trace_id
    for bad in ("", "00-xyz-01", f"00-{'0' * 32}-{parent}-01", f"00-{trace_id}-{'0' * 16}-01"):
        assert not trace.get_current_span(tracing.extract({"traceparent": bad})).get_span_context().is_valid
