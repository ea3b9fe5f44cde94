"""`make wheel-check`: the built wheel, installed as a new user installs it, runs.

Usage: python tests/wheel_check.py dist/databot-X-py3-none-any.whl

A fresh venv, the wheel WITHOUT extras (so nothing of the test toolchain), then from an
empty folder: `databot --version`, `databot check` (exit 1 is fine: no Slack credentials;
it must print its whole report, find the packaged manifest and create no file),
`databot metric dau 7d` (the demo warehouse: DuckDB needs pytz for timestamps) and
`databot demo`. Any traceback, missing module or missing packaged file fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 900):
    print("$", " ".join(cmd), flush=True)
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    if "Traceback" in output or "ModuleNotFoundError" in output:
        sys.exit(f"{cmd[1:]} failed with a traceback:\n{output[-4000:]}")
    return result


def main(wheel: str) -> None:
    with tempfile.TemporaryDirectory(prefix="databot-wheel-") as tmp:
        root = Path(tmp)
        venv.create(root / "venv", with_pip=True)
        python = root / "venv" / "bin" / "python"
        databot = str(root / "venv" / "bin" / "databot")
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", str(Path(wheel).resolve())],
            capture_output=True,
            text=True,
        )
        if install.returncode:
            sys.exit(f"pip install {wheel} failed:\n{install.stdout}{install.stderr}")
        work = root / "work"
        work.mkdir()
        # No settings from this machine: the new user's environment.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "GITHUB_", "GCP_", "DATABASE_", "DEMO_", "PYTHON"))
        }

        version = run([databot, "--version"], work, env)
        assert version.returncode == 0 and version.stdout.startswith("databot "), version

        check = run([databot, "check"], work, env)
        assert check.returncode in (0, 1), check.stderr
        assert "manifest.yml matches the commands" in check.stdout, check.stdout
        assert "metric catalog:" in check.stdout and "checks" in check.stdout, check.stdout
        assert list(work.iterdir()) == [], f"databot check created {list(work.iterdir())}"

        metric = run([databot, "metric", "dau", "7d"], work, env)
        assert metric.returncode == 0, metric.stdout + metric.stderr
        assert "DAU" in metric.stdout and "demo data" in metric.stdout, metric.stdout

        demo = run([databot, "demo"], work, env, timeout=1200)
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        assert "bot listening on http://127.0.0.1:" in demo.stdout, demo.stdout[-3000:]
        print("wheel check passed:", version.stdout.strip())


if __name__ == "__main__":
    main(sys.argv[1])
