"""myguard as a client of the real database: connection phase with the service account."""
