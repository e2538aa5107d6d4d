"""Sockets: packet streams over asyncio transports, TLS contexts."""
