"""`databot serve` processes for the benchmarks: as deployed (settings from the
environment, the demo warehouse in DATA_DIR), answering Slack at a stand-in's URL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(port: int, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None:
            raise RuntimeError("the server exited before it was healthy")
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not start")
        time.sleep(0.2)


def spawn_serve(
    data_dir: Path, *, api_url: str, database_url: str, secret: str, port: int | None = None
) -> tuple[subprocess.Popen, int]:
    """`databot serve` on the demo warehouse in `data_dir`, state in `database_url`, not
    yet healthy (see `wait_healthy`)."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GITHUB_"))}
    env.update(
        PYTHONPATH=str(REPO),
        HOST="127.0.0.1",
        PORT=str(port),
        DATA_DIR=str(data_dir),
        DATABASE_URL=database_url,
        DEMO_WAREHOUSE="true",
        SLACK_BOT_TOKEN="xoxb-bench",
        SLACK_SIGNING_SECRET=secret,
        SLACK_API_URL=api_url,
        SLACK_RESPONSE_URL_HOSTS='["127.0.0.1"]',
        LOG_LEVEL="WARNING",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"],
        env=env,
        cwd=data_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, port
