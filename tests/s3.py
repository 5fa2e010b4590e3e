"""A real S3 endpoint for the tests: moto's standalone server on loopback, checking signatures.

``moto_server`` speaks the S3 HTTP API (SigV4, multipart, ranges). Started with IAM users and
then switched to enforcing auth (``/moto-api/reset-auth``), it recomputes every request's
SigV4 signature from the user's secret, so a wrong secret gets ``SignatureDoesNotMatch`` and
a read-only user ``AccessDenied``, as from AWS, MinIO or Ceph.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUCKET = "mlreg-test"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class MotoS3:
    """A running moto server: its endpoint, a bucket, and two users' keys."""

    endpoint: str
    process: subprocess.Popen
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    bucket: str = BUCKET

    @classmethod
    def start(cls, log: Path, timeout: float = 30.0) -> MotoS3:
        binary = Path(sys.executable).with_name("moto_server")
        port = free_port()
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(binary), "-H", "127.0.0.1", "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = cls(f"http://127.0.0.1:{port}", process)
        try:
            server._wait(timeout, log)
            server._set_up()
        except BaseException:
            server.stop()
            raise
        return server

    def _wait(self, timeout: float, log: Path) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        raise RuntimeError(f"moto_server did not answer within {timeout} s")

    def _set_up(self) -> None:
        """The bucket, a user allowed everything and a read-only one; then enforce auth."""
        import boto3

        anyone = {"aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
        iam = boto3.client("iam", endpoint_url=self.endpoint, region_name=REGION, **anyone)
        policies = {
            "writer": ["s3:*"],
            "reader": ["s3:GetObject", "s3:ListBucket"],
        }
        for user, actions in policies.items():
            iam.create_user(UserName=user)
            key = iam.create_access_key(UserName=user)["AccessKey"]
            iam.put_user_policy(
                UserName=user,
                PolicyName="s3",
                PolicyDocument=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
                    }
                ),
            )
            self.keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
        iam.close()
        s3 = boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION, **anyone)
        s3.create_bucket(Bucket=self.bucket)
        s3.close()
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(request, timeout=5).close()

    def env(self, user: str = "writer") -> dict[str, str]:
        """AWS variables that give boto3's standard chain ``user``'s credentials."""
        key, secret = self.keys[user]
        return {
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self, user: str = "writer") -> Any:
        """A raw boto3 client, to look behind the stores' backs (and to tamper)."""
        import boto3

        key, secret = self.keys[user]
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
