"""Response scanning: find where a command's response ends while it streams through.

Pure-Python twin of ``resultscan.pyx``. The scanner looks only at packet headers and the
few packets that steer the protocol (OK, ERR, EOF, column counts), so rows pass through
as large byte runs while myguard still knows how many rows passed, where each result
ends, and the final status.
"""

from __future__ import annotations

from myguard.protocol.errors import ProtocolError

# What the command was; it decides the response grammar.
RESPONSE_QUERY = 1  # COM_QUERY: OK | ERR | LOCAL INFILE | result sets, possibly several
# COM_STMT_EXECUTE that asks for a cursor: as QUERY (binary rows), but may open the cursor.
# Without the cursor flag an EXECUTE's response has the grammar of QUERY.
RESPONSE_EXECUTE = 2
RESPONSE_FETCH = 3  # COM_STMT_FETCH: binary rows then EOF/OK, or ERR
RESPONSE_PREPARE = 4  # COM_STMT_PREPARE: PREPARE_OK + parameter and column definitions
RESPONSE_FIELD_LIST = 5  # COM_FIELD_LIST: column definitions then EOF, or ERR
RESPONSE_SIMPLE = 6  # one packet, whatever it holds (OK/ERR/EOF/STATISTICS string)

_FIRST = 0
_COLUMNS = 1
_COLUMNS_EOF = 2
_ROWS = 3
_PARAMS = 4
_PARAMS_EOF = 5
_PREP_COLUMNS = 6
_PREP_COLUMNS_EOF = 7
_DONE = 8

_MORE_RESULTS = 0x0008
_CURSOR_EXISTS = 0x0040
_MAX_FRAGMENT = 0xFFFFFF


def _lenenc(buf: bytes | bytearray, pos: int) -> tuple[int, int]:
    first = buf[pos]
    if first < 0xFB:
        return first, pos + 1
    if first == 0xFC:
        return buf[pos + 1] | (buf[pos + 2] << 8), pos + 3
    if first == 0xFD:
        return buf[pos + 1] | (buf[pos + 2] << 8) | (buf[pos + 3] << 16), pos + 4
    return int.from_bytes(buf[pos + 1 : pos + 9], "little"), pos + 9


class ResponseScanner:
    """Tracks one response across the chunks that carry it."""

    def __init__(self, deprecate_eof: bool) -> None:
        self.deprecate_eof = deprecate_eof
        # The status of the last OK or EOF of any response (-1: none yet), kept across
        # responses: an error or a COM_STMT_PREPARE answer reports none, and the session's
        # own answers must still tell the client its autocommit and transaction state.
        self.known_status = -1
        self.start(RESPONSE_SIMPLE)

    def start(self, kind: int, stream_rows: bool = False, stop_at_rows: bool = False) -> None:
        """Begin scanning the response to a command of ``kind``.

        ``stream_rows``: rows (and continuation fragments of any 16 MiB+ packet) may be
        consumed before they are complete, so a caller that forwards raw bytes never has
        to buffer a whole row. Callers that need whole packets in every run (masking
        rewrites rows) leave it off.

        ``stop_at_rows``: ``scan`` stops after the packet that ends a result set's metadata
        (setting ``at_rows``, which the caller clears) and after one that leaves the
        response at the start of the next result (an OK with more results, the end of a
        result set's rows), so a caller rewriting metadata gets each header as one run.
        """
        self.kind = kind
        self.stream_rows = stream_rows
        self.stop_at_rows = stop_at_rows
        self.at_rows = False
        self.state = {RESPONSE_FETCH: _ROWS, RESPONSE_FIELD_LIST: _COLUMNS}.get(kind, _FIRST)
        self.done = False
        self.rows = 0
        self.result_sets = 0
        self.affected_rows = 0
        self.last_insert_id = 0
        self.status = 0
        self.warnings = 0
        self.error_code = 0
        self.local_infile = False
        self.stmt_id = 0
        self.num_params = 0
        self.num_columns = 0
        self.last_seq = 0
        self._remaining = -1  # column/param definitions still to come (FIELD_LIST: open-ended)
        self._continuation = False
        self._skip = 0  # body bytes of a streamed packet still to come

    def at_result_start(self) -> bool:
        """Between two results of a response (after an OK with more results, or after a
        result set's rows): the next packet starts a result, with or without columns."""
        return self.state == _FIRST

    def resume_after_infile(self) -> None:
        """After the LOCAL INFILE exchange the server answers with OK/ERR as a new first packet."""
        self.local_infile = False
        self.done = False
        self.state = _FIRST

    def scan(self, buf: bytes | bytearray) -> int:
        """Consume the packets at the start of ``buf`` that belong to this response.

        Returns how many bytes were consumed; stops at the end of the response (``done``),
        at a LOCAL INFILE request (``local_infile``), or at an incomplete packet, which
        with ``stream_rows`` is consumed as far as it goes when it is a row or a
        continuation fragment.
        """
        end = len(buf)
        pos = min(self._skip, end)
        if pos:
            self._skip -= pos
            if self._skip:
                return pos
        while not self.done and not self.local_infile:
            if end - pos < 4:
                break
            length = buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16)
            body = pos + 4
            if end - body < length:
                if self.stream_rows and self._streamable(buf, body, length, end):
                    self.last_seq = buf[pos + 3]
                    if not self._continuation:
                        self.rows += 1
                    self._continuation = length == _MAX_FRAGMENT
                    self._skip = length - (end - body)
                    pos = end
                break
            self.last_seq = buf[pos + 3]
            pos = body + length
            if self._continuation:
                # A fragment of a 16 MiB+ packet: not a packet start, never interpreted.
                self._continuation = length == _MAX_FRAGMENT
                continue
            self._continuation = length == _MAX_FRAGMENT
            self._packet(buf, body, length)
            if self.stop_at_rows and (self.at_rows or self.state == _FIRST):
                break
        return pos

    def _streamable(self, buf: bytes | bytearray, body: int, length: int, end: int) -> bool:
        """May this incomplete packet be consumed in part? Rows yes; terminators, OK and
        ERR packets are short and are interpreted, so they wait until complete."""
        if self._continuation:
            return True
        if self.state != _ROWS or body == end:
            return False
        return not self._row_end(buf[body], length)

    def _row_end(self, first: int, length: int) -> bool:
        """Does a packet in the rows state end the rows (EOF/OK terminator, ERR)?"""
        if first == 0xFF:
            return True
        return first == 0xFE and length < _MAX_FRAGMENT and (length < 9 or self.deprecate_eof)

    def _packet(self, buf: bytes | bytearray, body: int, length: int) -> None:
        first = buf[body] if length else -1
        state = self.state
        if state == _ROWS:
            if not self._row_end(first, length):
                self.rows += 1
            elif first == 0xFF:
                self._error(buf, body)
            else:
                self._end_of_rows(buf, body, length)
            return
        if first == 0xFF and state != _DONE:
            self._error(buf, body)
            return
        if state == _FIRST:
            self._first(buf, body, length, first)
        elif state == _COLUMNS:
            if self.kind == RESPONSE_FIELD_LIST:
                # Column definitions start with the catalog ("def"), never with 0xFE.
                if first == 0xFE:
                    self._finish(self._terminator_status(buf, body, length))
                return
            self._remaining -= 1
            if self._remaining == 0:
                if self.deprecate_eof:
                    self.state = _ROWS
                    self.at_rows = self.stop_at_rows
                else:
                    self.state = _COLUMNS_EOF
        elif state == _COLUMNS_EOF:
            status = self._eof(buf, body, length)
            self.at_rows = self.stop_at_rows
            if (
                self.kind == RESPONSE_EXECUTE
                and status & _CURSOR_EXISTS
                and not status & _MORE_RESULTS
            ):
                # A cursor opened: rows come later through COM_STMT_FETCH. With more results
                # the flag is a stored routine's own open cursor, and rows follow here.
                self._finish(status)
            else:
                self.state = _ROWS
        elif state == _PARAMS:
            self._remaining -= 1
            if self._remaining == 0:
                if self.deprecate_eof:
                    self._after_params()
                else:
                    self.state = _PARAMS_EOF
        elif state == _PARAMS_EOF:
            self._after_params()
        elif state == _PREP_COLUMNS:
            self._remaining -= 1
            if self._remaining == 0:
                if self.deprecate_eof:
                    self._finish(self.status)
                else:
                    self.state = _PREP_COLUMNS_EOF
        elif state == _PREP_COLUMNS_EOF:
            self._finish(self.status)

    def _first(self, buf: bytes | bytearray, body: int, length: int, first: int) -> None:
        kind = self.kind
        if kind == RESPONSE_SIMPLE:
            if first == 0x00 and length >= 7:
                self._ok(buf, body)
            self._finish(self.status)
            return
        if kind == RESPONSE_PREPARE:
            if first != 0x00 or length < 12:
                raise ProtocolError("malformed COM_STMT_PREPARE response from backend")
            self.stmt_id = int.from_bytes(buf[body + 1 : body + 5], "little")
            self.num_columns = buf[body + 5] | (buf[body + 6] << 8)
            self.num_params = buf[body + 7] | (buf[body + 8] << 8)
            self.warnings = buf[body + 10] | (buf[body + 11] << 8)
            if self.num_params:
                self.state = _PARAMS
                self._remaining = self.num_params
            else:
                self._after_params()
            return
        if first == 0x00:
            self._ok(buf, body)
            self.result_sets += 1
            if not self.status & _MORE_RESULTS:
                self._finish(self.status)
            return
        if first == 0xFB:
            self.local_infile = True
            return
        count, _ = _lenenc(buf, body)
        self.result_sets += 1
        self.num_columns = count
        self._remaining = count
        self.state = _COLUMNS

    def _after_params(self) -> None:
        if self.num_columns:
            self.state = _PREP_COLUMNS
            self._remaining = self.num_columns
        else:
            self._finish(self.status)

    def _end_of_rows(self, buf: bytes | bytearray, body: int, length: int) -> None:
        status = self._terminator_status(buf, body, length)
        if status & _MORE_RESULTS and self.kind != RESPONSE_FETCH:
            self.state = _FIRST
            self.status = status
        else:
            self._finish(status)

    def _terminator_status(self, buf: bytes | bytearray, body: int, length: int) -> int:
        if length < 9 and not self.deprecate_eof:
            return self._eof(buf, body, length)
        if self.deprecate_eof and length >= 7:
            self._ok(buf, body)
            return self.status
        return self._eof(buf, body, length)

    def _eof(self, buf: bytes | bytearray, body: int, length: int) -> int:
        self.known_status = _eof_status(buf, body, length)
        return self.known_status

    def _ok(self, buf: bytes | bytearray, body: int) -> None:
        affected, pos = _lenenc(buf, body + 1)
        insert_id, pos = _lenenc(buf, pos)
        self.affected_rows = affected
        self.last_insert_id = insert_id
        self.status = buf[pos] | (buf[pos + 1] << 8)
        self.known_status = self.status
        self.warnings = buf[pos + 2] | (buf[pos + 3] << 8)

    def _error(self, buf: bytes | bytearray, body: int) -> None:
        self.error_code = buf[body + 1] | (buf[body + 2] << 8)
        self._finish(0)

    def _finish(self, status: int) -> None:
        self.status = status
        self.state = _DONE
        self.done = True


def _eof_status(buf: bytes | bytearray, body: int, length: int) -> int:
    if length >= 5:
        return buf[body + 3] | (buf[body + 4] << 8)
    return 0
