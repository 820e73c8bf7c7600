"""`make run`'s supervisor (devstack.stack.Stack.supervise) with real child processes and a real PostgreSQL."""

import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from devstack.stack import Stack


def _crashing() -> "subprocess.Popen[bytes]":
    return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])


def test_a_crashing_child_is_restarted_with_growing_backoff(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    stack._adopt("flaky", _crashing)
    try:
        stack.children[0][1].wait(10)
        # GIVEN a child that exits at once: each crash schedules the restart 1, 2, 4 s later
        restarts: list[float] = []
        now = 0.0
        while len(restarts) < 3 and now < 20:
            pid = stack.children[0][1].pid
            stack.supervise(now)
            if stack.children[0][1].pid != pid:
                restarts.append(now)
                stack.children[0][1].wait(10)
            now += 0.25
        assert restarts == [1.0, 1.0 + 2.0 + 0.25, 1.0 + 2.0 + 0.25 + 4.0 + 0.25]
        assert stack.supervised["flaky"].crashes == 3
    finally:
        stack.stop()


def test_a_stopped_embedded_postgres_is_started_again_with_its_data(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    url = stack.start_postgres()
    try:
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE kept (id int)"))
            connection.execute(sa.text("INSERT INTO kept VALUES (7)"))
        engine.dispose()
        # WHEN PostgreSQL is stopped under the stack
        stack.pg_server.stop()  # type: ignore[union-attr]
        # THEN one supervision round starts it again, same URL, same data
        stack.supervise(time.monotonic())
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT id FROM kept")).scalar_one() == 7
        engine.dispose()
    finally:
        stack.stop()
