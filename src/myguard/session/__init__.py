"""A client session: the command phase between an authenticated client and its backend."""
