"""Many fresh starts of the project for the price of one interpreter.

The settings are only ever evaluated once per process, so every environment under test (the
production one, one per missing key, `make run`'s) needs a process of its own. A new interpreter
for each costs its start and the imports of everything settings.py needs, most of it the same
every time. Here one interpreter imports what manage.py and settings.py import before any
setting is read (nothing of the project, no setting: DJANGO_SETTINGS_MODULE is not even set),
then forks a child per run. The child takes the run's environment as its whole environment and
then does what was asked: `manage.py <argv>` exactly as manage.py does it, or a snippet (for a
claim about the settings alone, which need no `django.setup()`). Its exit status, standard
output and standard error are the run's, as if it had been started on its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

RUNNER = r"""
import json, os, sys, tempfile, traceback

# What manage.py imports, and what settings.py imports before it reads its first variable.
from django.core.management import execute_from_command_line
import environ, celery.schedules, cryptography.fernet, csp.constants, django.core.exceptions
import django.utils.translation

def run(case):
    os.environ.clear()
    os.environ.update(case["environment"])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dmp.settings")  # as manage.py
    if "manage" in case:
        sys.argv = ["manage.py", *case["manage"]]
        execute_from_command_line(sys.argv)
    else:
        exec(compile(case["code"], "<run>", "exec"), {"__name__": "__main__"})

results = []
for case in json.load(sys.stdin):
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush(), sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            status = 0
            try:
                run(case)
            except SystemExit as stop:  # what the interpreter does with sys.exit(...)
                if isinstance(stop.code, int):
                    status = stop.code
                elif stop.code is not None:
                    print(stop.code, file=sys.stderr)
                    status = 1
            except BaseException:  # an uncaught error: its traceback, status 1
                traceback.print_exc()
                status = 1
            finally:
                sys.stdout.flush(), sys.stderr.flush()
            os._exit(status)
        _, wait_status = os.waitpid(pid, 0)
        out.seek(0), err.seek(0)
        results.append({"returncode": os.waitstatus_to_exitcode(wait_status),
                        "stdout": out.read().decode(errors="replace"), "stderr": err.read().decode(errors="replace")})
sys.stdout.write(json.dumps(results))
"""

# What the runner itself starts with: the test run's environment without anything the
# settings read (each run brings its own), so that no setting can be read before a fork.
_NOT_FOR_THE_RUNNER = ("DJANGO_SETTINGS_MODULE",)


def run_each(cases: Sequence[Mapping[str, object]], *, timeout: float = 300) -> list[subprocess.CompletedProcess[str]]:
    """Each case is {"environment": {...}, "manage": [argv...]} or {"environment": {...},
    "code": "..."}: the runs, in order, each as a CompletedProcess."""
    environment = {k: v for k, v in os.environ.items() if k not in _NOT_FOR_THE_RUNNER}
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", RUNNER], cwd=BASE_DIR, env=environment, input=json.dumps(list(cases)),
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [subprocess.CompletedProcess(case.get("manage", ["-c"]), r["returncode"], r["stdout"], r["stderr"])
            for case, r in zip(cases, json.loads(done.stdout), strict=True)]


def manage_each(*runs: tuple[Sequence[str], Mapping[str, str]], timeout: float = 300):
    """`manage.py <argv>` under each environment, as separate starts would run them."""
    return run_each([{"manage": list(argv), "environment": dict(env)} for argv, env in runs], timeout=timeout)


def settings_in(names: Sequence[str], *environments: Mapping[str, str]) -> list[subprocess.CompletedProcess[str]]:
    """The settings module evaluated under each environment alone: the values of `names` as
    JSON on the last line of stdout (a refused configuration fails with its traceback instead)."""
    code = ("import json; from django.conf import settings\n"
            f"print(json.dumps({{name: getattr(settings, name) for name in {list(names)!r}}}))")
    return run_each([{"code": code, "environment": dict(environment)} for environment in environments])


def settings_values(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
