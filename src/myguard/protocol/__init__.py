"""MySQL client/server protocol codecs: pure functions over bytes, no I/O."""
