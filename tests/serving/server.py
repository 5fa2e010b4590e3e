"""A real ``mlreg serve`` (gunicorn) process on loopback, for the tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

MLREG = str(Path(sys.executable).with_name("mlreg"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Peer:
    """The TF Serving test peer (tests/serving/tfserving_peer.py) in a subprocess."""

    def __init__(self, name: str, base: Path, log_path: Path, *args: str) -> None:
        self.name = name
        self.base = base
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.control = base.parent / f"{name}-control.json"
        self.log_path = log_path
        self._args = ("--model_name", name, "--model_base_path", str(base), *args)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Peer:
        self.control.write_text("{}")
        cmd = [sys.executable, "-m", "tests.serving.tfserving_peer", "--port", str(self.port)]
        cmd += [*self._args, "--control_file", str(self.control)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"peer exited: {self.log_path.read_text(errors='replace')}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise RuntimeError("the TF Serving peer did not start listening")

    def set(self, **control: Any) -> None:
        """What the next Predict calls do: ``fail="INTERNAL"``, ``delay_ms=500``."""
        self.control.write_text(json.dumps(control))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


class Server:
    """``mlreg serve`` in a subprocess; logs go to a file the tests can read."""

    def __init__(
        self,
        model: Path | str,
        log_path: Path,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
        full_env = {k: v for k, v in full_env.items() if not k.startswith("MLREG_")} | (env or {})
        full_env["MLREG_PORT"] = str(self.port)
        self._log = open(log_path, "wb")  # noqa: SIM115  (closed in stop())
        cmd = command or [MLREG, "serve", "-m", str(model), "--port", str(self.port), *args]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=full_env)

    @classmethod
    def fake(
        cls, kind: str, root: Path, log_path: Path, env: dict[str, str] | None = None
    ) -> Server:
        """The real server (gunicorn, the HTTP worker, the app) on a numpy stand-in of a model
        (tests/serving/fake_server.py): no TensorFlow, ready in about a second."""
        command = [sys.executable, "-m", "tests.serving.fake_server", kind, str(root)]
        return cls(root, log_path, env=env, command=command)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 120) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/ping", timeout=2).status_code == 200:
                    return self
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or too busy loading to answer in time
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log()}")

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        if body is not None:
            kwargs["json"] = body
        return requests.post(self.url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return requests.get(self.url + path, **kwargs)

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode
