"""eventdock's benchmark harness (SPEC §9): ``python -m bench --help``.

Real server processes (``eventdock serve`` and a bare ASGI app under the
same uvicorn) driven by ``wrk`` and a fixed-rate generator; see
``bench/runner.py`` for the phases and ``bench/PROFILE.md`` for where the
time goes.
"""
