"""`make run`'s last step: web (gunicorn), a Celery worker and beat in one foreground command.

Ctrl-C (or SIGTERM) stops all three. If one of them dies, the others are stopped too, so that a
half-running stack never passes for a working one.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port(preferred):
    for port in range(preferred, preferred + 20):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    sys.exit(f"No free port between {preferred} and {preferred + 19}: set PORT to a free one.")


def main():
    port = free_port(int(os.environ.get("PORT", "8000")))
    host = os.environ.get("HOST", "127.0.0.1")
    env = {**os.environ, "SITE_URL": os.environ.get("SITE_URL", f"http://{host}:{port}")}
    data = ROOT / ".data"
    data.mkdir(exist_ok=True)
    commands = {
        "web": [
            str(VENV_BIN / "gunicorn"),
            "clearinghouse.wsgi:application",
            "--config",
            "python:clearinghouse.serving",
            "--bind",
            f"{host}:{port}",
            "--workers",
            os.environ.get("WEB_CONCURRENCY", str(2 * (os.cpu_count() or 1))),
            "--threads",
            os.environ.get("WEB_THREADS", "2"),
            "--access-logfile",
            "-",
            "--graceful-timeout",
            "5",
        ],
        "worker": [
            str(VENV_BIN / "celery"),
            "-A",
            "clearinghouse",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            os.environ.get("WORKER_CONCURRENCY", "2"),
            "--hostname",
            "worker@%h",
        ],
        "beat": [
            str(VENV_BIN / "celery"),
            "-A",
            "clearinghouse",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(data / "celerybeat-schedule"),
        ],
    }
    procs = {name: subprocess.Popen(cmd, cwd=ROOT, env=env) for name, cmd in commands.items()}

    stopping = False

    def stop(*_):
        nonlocal stopping
        if stopping:
            return
        stopping = True
        print("\n==> stopping web, worker and beat", flush=True)
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 15
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    base = f"http://{host}:{port}"
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.2)
    demo = data / "demo.txt"
    print(
        "\n"
        "==> Clearinghouse is running (Ctrl-C stops web, worker and beat)\n"
        f"    Portal        {base}/portal/\n"
        f"    API docs      {base}/api/docs/   (schema: {base}/api/schema/)\n"
        f"    API           {base}/api/v1/partners/me\n"
        f"    Operator      {base}/admin/\n"
        f"    Health        {base}/healthz\n",
        flush=True,
    )
    if demo.exists():
        print(demo.read_text(), flush=True)

    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None and not stopping:
                print(f"==> {name} exited with {proc.returncode}; stopping the rest", flush=True)
                stop()
                sys.exit(1)
        time.sleep(0.5)


if __name__ == "__main__":
    main()
