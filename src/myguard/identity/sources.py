"""The identity source named by the ``[identity]`` table, for the proxy and the CLI alike."""

from __future__ import annotations

from pathlib import Path

from myguard.config import IdentityConfig
from myguard.identity.base import IdentitySource


def open_source(identity: IdentityConfig, config_file: str | Path) -> IdentitySource:
    """The users file or LDAP directory ``identity`` names; raises ConfigError."""
    if identity.source == "ldap":
        from myguard.identity.ldap import LdapIdentitySource
        from myguard.identity.ldap_config import LdapConfig

        return LdapIdentitySource(
            LdapConfig.from_table(identity.ldap_table, str(config_file), "identity.ldap")
        )
    from myguard.identity.users_file import UsersFileSource

    return UsersFileSource(identity.users_file)
