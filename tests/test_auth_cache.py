"""The key cache: concurrent misses share one lookup, and a revocation wins a race with a lookup."""

from __future__ import annotations

import asyncio

from eventdock.core.auth import Authenticator, KeyRecord, hash_token


async def test_concurrent_misses_share_one_lookup() -> None:
    calls = 0
    release = asyncio.Event()

    async def lookup(digest: str) -> KeyRecord | None:
        nonlocal calls
        calls += 1
        await release.wait()
        return KeyRecord(id="k", project_id="p", name="n", scopes=["events:write"], revoked=False)

    auth = Authenticator(lookup, ttl=60)
    waiters = [asyncio.create_task(auth.authenticate("edk_token")) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    principals = await asyncio.gather(*waiters)
    assert calls == 1 and {p.key_id for p in principals} == {"k"}


async def test_a_cancelled_first_caller_does_not_fail_the_others() -> None:
    release = asyncio.Event()

    async def lookup(digest: str) -> KeyRecord | None:
        await release.wait()
        return KeyRecord(id="k", project_id="p", name="n", scopes=["*"], revoked=False)

    auth = Authenticator(lookup, ttl=60)
    first = asyncio.create_task(auth.authenticate("edk_token"))
    second = asyncio.create_task(auth.authenticate("edk_token"))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert (await second).key_id == "k"


async def test_a_lookup_in_flight_during_forget_is_not_cached() -> None:
    revoked = False
    started, release = asyncio.Event(), asyncio.Event()

    async def lookup(digest: str) -> KeyRecord | None:
        assert digest == hash_token("edk_token")
        seen = revoked
        started.set()
        await release.wait()
        return KeyRecord(id="k", project_id="p", name="n", scopes=["*"], revoked=seen)

    auth = Authenticator(lookup, ttl=60)
    stale = asyncio.create_task(auth.authenticate("edk_token"))
    await started.wait()
    revoked = True
    auth.forget()  # the revocation happened while the lookup was running
    release.set()
    await stale  # it read the key before the revocation: this request may pass
    try:
        await auth.authenticate("edk_token")
    except Exception as exc:  # noqa: BLE001
        assert type(exc).__name__ == "AuthenticationFailed"
    else:
        raise AssertionError("the revoked key was served from a stale cache entry")
