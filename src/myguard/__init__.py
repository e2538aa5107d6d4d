"""myguard: identity-aware governance proxy for MySQL and MariaDB."""

__version__ = "0.1.0"
