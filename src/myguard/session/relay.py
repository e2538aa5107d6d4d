"""Stream a backend's response to the client as byte runs, without buffering result sets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from myguard import metrics
from myguard._fast import load
from myguard.net.packet_stream import PacketStream

_scan = load("resultscan")

ResponseScanner = _scan.ResponseScanner
RESPONSE_QUERY = _scan.RESPONSE_QUERY
RESPONSE_EXECUTE = _scan.RESPONSE_EXECUTE
RESPONSE_FETCH = _scan.RESPONSE_FETCH
RESPONSE_PREPARE = _scan.RESPONSE_PREPARE
RESPONSE_FIELD_LIST = _scan.RESPONSE_FIELD_LIST
RESPONSE_SIMPLE = _scan.RESPONSE_SIMPLE


@dataclass(slots=True)
class Outcome:
    """What a statement's response came to, for the audit record."""

    rows: int = 0
    affected_rows: int = 0
    error_code: int = 0
    masked: dict[str, str] = field(default_factory=dict)  # result column -> strategy


class ClientGone(Exception):
    """The client vanished while its response was being relayed."""


async def relay_response(
    scanner: ResponseScanner,
    backend: PacketStream,
    client: PacketStream,
    rewrite: Callable[[bytes], bytes] | None = None,
) -> None:
    """Forward packets from ``backend`` to ``client`` until ``scanner`` says the response ended.

    ``rewrite`` (masking) turns each run of complete packets into what the client gets.
    Raises ConnectionLost when the backend fails, ClientGone when the client does; stops
    early with ``scanner.local_infile`` set when the server asks for a local file.
    """
    pending = b""
    tally = metrics.tally
    while True:
        chunk = await backend.read_chunk()
        data = pending + chunk if pending else chunk
        used = scanner.scan(data)
        if used:
            out = data if used == len(data) else data[:used]
            if rewrite is not None:
                out = rewrite(out)
            try:
                client.write_raw(out)
                await client.drain()
            except Exception as exc:  # ConnectionLost or a transport error on write
                raise ClientGone(str(exc)) from exc
            tally.bytes_to_client += used
        pending = data[used:] if used < len(data) else b""
        if scanner.done or scanner.local_infile:
            if pending:
                backend.unread(pending)
            return
