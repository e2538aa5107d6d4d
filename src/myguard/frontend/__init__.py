"""Client-facing connection phase: greeting, TLS upgrade and authentication."""
