"""[audit] ring_directory: /dev/shm unless set, "" turns the ring off, a missing directory
is a config error naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from myguard import config as config_module
from myguard.config import load_audit_config
from myguard.config_error import ConfigError, ConfigErrors


def audit(tmp_path, extra: str):
    path = tmp_path / "myguard.toml"
    path.write_text(f'[audit]\ndirectory = "audit"\n{extra}')
    return path, lambda: load_audit_config(path)


def test_the_ring_defaults_to_dev_shm_where_the_machine_has_it(tmp_path, monkeypatch):
    _, load = audit(tmp_path, "")
    monkeypatch.setattr(config_module, "DEFAULT_RING_DIRECTORY", tmp_path)
    assert load().ring_directory == tmp_path
    monkeypatch.setattr(config_module, "DEFAULT_RING_DIRECTORY", tmp_path / "missing")
    assert load().ring_directory is None


def test_an_empty_ring_directory_turns_the_ring_off(tmp_path):
    _, load = audit(tmp_path, 'ring_directory = ""\n')
    assert load().ring_directory is None


def test_a_ring_directory_relative_to_the_config_file(tmp_path):
    (tmp_path / "rings").mkdir()
    _, load = audit(tmp_path, 'ring_directory = "rings"\n')
    assert load().ring_directory == Path(tmp_path / "rings")


def test_a_missing_ring_directory_names_file_and_key(tmp_path):
    path, load = audit(tmp_path, 'ring_directory = "/no/such/dir"\n')
    with pytest.raises((ConfigError, ConfigErrors)) as failed:
        load()
    text = str(failed.value)
    assert str(path) in text and "audit.ring_directory" in text and "existing directory" in text
