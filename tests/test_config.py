"""Settings come from EVENTDOCK_* variables; an unset one leaves the dataclass default."""

from __future__ import annotations

from dataclasses import fields

from eventdock.config import Limits, Settings, WriterSettings


def test_every_setting_is_read_from_its_variable_and_unset_ones_keep_their_default() -> None:
    assert Settings.from_env({}) == Settings()
    env = {
        "EVENTDOCK_DATABASE_URL": "sqlite:///elsewhere.db",
        "EVENTDOCK_MIGRATE_ON_START": "false",
        "EVENTDOCK_KEY_CACHE_SECONDS": "7.5",
        "EVENTDOCK_GC_GEN0_THRESHOLD": "1e4",
        "EVENTDOCK_LIMIT_MAX_DEPTH": "3",
        "EVENTDOCK_WRITER_CONNECTIONS": "4",
        "EVENTDOCK_WRITER_MAX_WAIT_MS": "0.5",
    }
    s = Settings.from_env(env)
    assert (s.database_url, s.migrate_on_start, s.key_cache_seconds, s.gc_gen0_threshold) == ("sqlite:///elsewhere.db", False, 7.5, 10_000)
    assert s.limits == Limits(max_depth=3)
    assert s.writer == WriterSettings(connections=4, max_wait_ms=0.5)
    for f in fields(Settings):  # each setting has a variable of its own name
        if f.name not in ("limits", "writer"):
            raw = {"bool": "0", "str": "sqlite:///other.db"}.get(str(f.type), "123")
            assert getattr(Settings.from_env({f"EVENTDOCK_{f.name.upper()}": raw}), f.name) != f.default, f.name
