# Packet framing, declared for the compiled modules that frame packets (proxycore).

cdef class PacketBuffer:
    cdef public long long max_payload
    # False on the compressed protocol, where the server reads the packets inside the
    # compressed ones without checking their sequence ids (Connector/J numbers them on).
    cdef public bint checks_sequence
    # Unread bytes are _data[_start:]. _data is bytes exactly as fed (never copied) or,
    # once a second chunk arrives before the first is used up, a bytearray appended to.
    cdef object _data
    cdef bint _appendable
    cdef Py_ssize_t _start

    cdef inline void _reset(self)
    cdef inline Py_ssize_t _size(self)
    cdef inline const unsigned char* _ptr(self)
    cpdef feed(self, data)
    cpdef take(self)
    cpdef next_packet(self, long long seq)


cpdef build_packets(payload, long long seq)
