"""The users file is read into memory: logins never look at the file; changes arrive by
the watcher, a reload, or (for a name not known yet) one check on the miss."""

from __future__ import annotations

import asyncio
import os

from myguard.identity.users_file import UsersFileSource, read_users, write_user


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def disable(path, name: str) -> None:
    text = path.read_text().replace(f'[users."{name}"]', f'[users."{name}"]\ndisabled = true')
    path.write_text(text)
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))  # a visibly newer file


def test_logins_do_not_read_the_file_until_it_is_reloaded(tmp_path):
    path = tmp_path / "users.toml"
    write_user(path, "alice", "pw-1", ["dba"])
    clock = Clock()
    source = UsersFileSource(path, clock=clock)
    disable(path, "alice")
    assert read_users(path)["alice"].disabled
    clock.now += 3600
    # In memory until a reload: a login costs no file system call.
    assert asyncio.run(source.fast_verifiers("alice")) is not None
    assert source.reload()
    assert asyncio.run(source.fast_verifiers("alice")) is None


def test_a_new_name_is_looked_for_once_on_the_miss(tmp_path):
    path = tmp_path / "users.toml"
    write_user(path, "alice", "pw-1", [])
    clock = Clock()
    source = UsersFileSource(path, clock=clock)
    write_user(path, "dora", "pw-4", ["analysts"])
    assert asyncio.run(source.fast_verifiers("dora")) is None  # checked < 50 ms ago
    clock.now += 1
    found = asyncio.run(source.fast_verifiers("dora"))
    assert found is not None and found.identity.groups == {"analysts"}


def test_a_broken_file_keeps_the_users_read_before(tmp_path):
    path = tmp_path / "users.toml"
    write_user(path, "alice", "pw-1", [])
    source = UsersFileSource(path, clock=Clock())
    path.write_text("[users.alice\nbroken")
    assert not source.reload()
    assert asyncio.run(source.fast_verifiers("alice")) is not None


def test_the_watcher_picks_up_a_change(tmp_path):
    path = tmp_path / "users.toml"
    write_user(path, "alice", "pw-1", [])
    source = UsersFileSource(path)

    async def scenario() -> None:
        watcher = asyncio.create_task(source.watch(0.05))
        disable(path, "alice")
        for _ in range(100):
            if await source.fast_verifiers("alice") is None:
                break
            await asyncio.sleep(0.02)
        watcher.cancel()
        assert await source.fast_verifiers("alice") is None

    asyncio.run(scenario())
