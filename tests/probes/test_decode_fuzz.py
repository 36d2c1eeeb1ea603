"""The decoders on recorded kernel bytes, mutated: they decode or count, never raise or hang.

Seeds are the records of tests/fixtures/ring/mixed.bin (a real run, scripts/record_ring.py).
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logira.probes import layout
from logira.probes.decode import decode_batch
from logira.probes.replay import read_recording

REC = read_recording(Path(__file__).parent.parent / "fixtures" / "ring" / "mixed.bin")
CLOCK = REC.clock
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_the_recording_decodes_exactly() -> None:
    d = decode_batch(REC.records, CLOCK)
    assert (d.errors, d.ignored, len(d.events)) == (0, 0, len(REC.records))
    assert {e.run_cgroup_id for e in d.events} == {REC.meta["run_cgroup_id"]}


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    rec = bytearray(draw(st.sampled_from(REC.records)))
    how = draw(st.sampled_from(["truncate", "flip", "extend", "kind"]))
    if how == "truncate":
        del rec[draw(st.integers(0, max(0, len(rec) - 1))):]
    elif how == "flip":
        for _ in range(draw(st.integers(1, 16))):
            i = draw(st.integers(0, len(rec) - 1))
            rec[i] = draw(st.integers(0, 255))
    elif how == "extend":
        rec += draw(st.binary(min_size=1, max_size=512))
    else:  # another record kind with this body: every decoder sees every other layout
        fields = list(layout.HDR.unpack_from(rec, 0))
        fields[7] = draw(st.integers(0, 64))  # rec_hdr.kind (layout.HDR field order)
        layout.HDR.pack_into(rec, 0, *fields)
    return bytes(rec)


@FUZZ
@given(st.lists(mutated(), min_size=1, max_size=8))
def test_mutated_records_are_decoded_or_counted_never_raised(raws: list[bytes]) -> None:
    d = decode_batch(raws, CLOCK)
    assert d.errors + d.ignored + len(d.events) == len(raws)
    for ev in d.events:  # what is decoded is a well-formed event of the model
        assert isinstance(ev.pid, int) and isinstance(ev.comm, str)


@FUZZ
@given(st.binary(min_size=0, max_size=2048))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    d = decode_batch([raw], CLOCK)
    assert d.errors + d.ignored + len(d.events) == 1
