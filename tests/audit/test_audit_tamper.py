"""verify finds every kind of tampering at the right segment and offset."""

from __future__ import annotations

import pytest

from myguard.audit import iter_records, verify
from myguard.audit.segment import HEADER_SIZE, encode_frame, iter_frames, list_segments

KEY = b"k" * 32


@pytest.fixture
def chain(tmp_path, write_records, make_statement):
    """Four or more segments of statement records, written one group commit each."""
    write_records(tmp_path, [make_statement(i) for i in range(40)], rotate_bytes=900)
    segments = [path for _, path in list_segments(tmp_path)]
    assert len(segments) >= 4
    assert verify(tmp_path).ok
    return segments


def frames(path):
    return list(iter_frames(path.read_bytes()))


def rewrite(path, frame_list):
    header = path.read_bytes()[:HEADER_SIZE]
    path.write_bytes(header + b"".join(encode_frame(payload) for _, payload in frame_list))


def problem_of(directory, key=None):
    report = verify(directory, key)
    assert not report.ok
    return report.problem


def test_intact_chain_passes(tmp_path, chain):
    report = verify(tmp_path)
    assert report.records == 40 and report.segments == len(chain)
    assert (report.first_record, report.last_record) == (1, 40)


def test_flipped_byte_is_a_checksum_error(tmp_path, chain):
    seg = chain[1]
    offset, payload = frames(seg)[2]
    data = bytearray(seg.read_bytes())
    data[offset + 8 + len(payload) - 3] ^= 0x01
    seg.write_bytes(bytes(data))
    problem = problem_of(tmp_path)
    assert (problem.segment, problem.offset) == (seg.name, offset)
    assert "checksum" in problem.reason


def test_changed_record_with_fixed_checksum_breaks_the_chain(tmp_path, chain):
    seg = chain[1]
    frame_list = frames(seg)
    offset, payload = frame_list[1]
    frame_list[1] = (offset, payload.replace(b"allow", b"ALLOW").replace(b"deny", b"DENY"))
    rewrite(seg, frame_list)
    problem = problem_of(tmp_path)
    assert (problem.segment, problem.offset) == (seg.name, frame_list[2][0])
    assert "does not follow" in problem.reason


def test_dropped_record(tmp_path, chain):
    seg = chain[2]
    frame_list = frames(seg)
    dropped_at = frame_list[1][0]
    rewrite(seg, frame_list[:1] + frame_list[2:])
    problem = problem_of(tmp_path)
    assert (problem.segment, problem.offset) == (seg.name, dropped_at)


def test_swapped_records(tmp_path, chain):
    seg = chain[1]
    frame_list = frames(seg)
    frame_list[1], frame_list[2] = frame_list[2], frame_list[1]
    rewrite(seg, frame_list)
    problem = problem_of(tmp_path)
    assert (problem.segment, problem.offset) == (seg.name, frames(seg)[1][0])


def test_segment_truncated_inside_a_record(tmp_path, chain):
    seg = chain[1]
    offset, _ = frames(seg)[3]
    seg.write_bytes(seg.read_bytes()[: offset + 11])
    problem = problem_of(tmp_path)
    assert (problem.segment, problem.offset) == (seg.name, offset)
    assert "incomplete" in problem.reason


def test_segment_truncated_at_a_record_boundary(tmp_path, chain):
    seg = chain[1]
    last_offset, _ = frames(seg)[-1]
    seg.write_bytes(seg.read_bytes()[:last_offset])
    problem = problem_of(tmp_path)
    assert (problem.segment, problem.offset) == (chain[2].name, 0)


def test_deleted_middle_segment(tmp_path, chain):
    chain[1].unlink()
    problem = problem_of(tmp_path)
    assert (problem.segment, problem.offset) == (chain[2].name, 0)
    assert "missing" in problem.reason


def test_removed_oldest_segments_anchor_the_chain(tmp_path, chain):
    chain[0].unlink()
    report = verify(tmp_path)
    assert report.ok, report.problem
    assert report.first_segment == 2
    assert report.first_record == next(iter_records(tmp_path)).seq > 1
    assert any("anchored" in note for note in report.notes)


def test_header_damage(tmp_path, chain):
    data = bytearray(chain[2].read_bytes())
    data[20] ^= 0xFF
    chain[2].write_bytes(bytes(data))
    problem = problem_of(tmp_path)
    assert (problem.segment, problem.offset) == (chain[2].name, 0)


def test_empty_directory_is_a_problem(tmp_path):
    assert "no audit segments" in problem_of(tmp_path).reason


def test_hmac_chain_needs_the_right_key(tmp_path, write_records, make_statement):
    write_records(tmp_path, [make_statement(i) for i in range(10)], hmac_key=KEY)
    assert verify(tmp_path, KEY).ok
    assert "HMAC key is needed" in problem_of(tmp_path).reason
    assert "different HMAC key" in problem_of(tmp_path, b"x" * 32).reason


def test_hmac_chain_cannot_be_reforged_without_the_key(tmp_path, write_records, make_statement):
    """Rewriting a record and fixing its checksum is caught at the next link."""
    write_records(tmp_path, [make_statement(i) for i in range(10)], hmac_key=KEY)
    ((_, seg),) = list_segments(tmp_path)
    frame_list = frames(seg)
    frame_list[4] = (frame_list[4][0], frame_list[4][1].replace(b"user", b"resu"))
    rewrite(seg, frame_list)
    problem = problem_of(tmp_path, KEY)
    assert (problem.segment, problem.offset) == (seg.name, frame_list[5][0])


def test_writer_refuses_a_different_hmac_setting(tmp_path, write_records, make_statement):
    from myguard.audit import AuditFormatError

    write_records(tmp_path, [make_statement(1)], hmac_key=KEY)
    with pytest.raises(AuditFormatError):
        write_records(tmp_path, [make_statement(2)])
