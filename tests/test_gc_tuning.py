"""A server worker tunes the garbage collector (issue 6; EVENTDOCK_GC_GEN0_THRESHOLD).

The tuning is process-wide, so each case runs the server's entry point
(``create_app_from_env``, what uvicorn calls in every worker) in a process
of its own rather than in the test process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import gc
before = gc.get_threshold()
from eventdock.app import create_app_from_env
create_app_from_env()
print(before[0], gc.get_threshold()[0], gc.get_freeze_count() > 0)
"""


def worker_gc(tmp_path: Path, **env: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EVENTDOCK_")}
    environ.update(EVENTDOCK_DATABASE_URL=f"sqlite:///{tmp_path}/gc.db", EVENTDOCK_MIGRATE_ON_START="0", **env)
    done = subprocess.run([sys.executable, "-c", PROBE], env=environ, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.split()


@pytest.mark.parametrize(("setting", "expected"), [(None, "50000"), ("20000", "20000"), ("0", "700")])
def test_server_worker_sets_the_young_generation_threshold_and_freezes_start_up(tmp_path: Path, setting: str | None, expected: str) -> None:
    env = {} if setting is None else {"EVENTDOCK_GC_GEN0_THRESHOLD": setting}
    before, after, frozen = worker_gc(tmp_path, **env)
    assert before == "700"  # CPython's default, so the change is the worker's doing
    assert after == expected
    assert frozen == "True"
