"""The AWS emulator (moto server): S3 and Timestream-write on one port."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from omium.infra.localstack._component import Component, Launch, error_text, host_port
from omium.infra.localstack._errors import PrerequisiteError


class Moto(Component):
    """S3 for checkpoint blobs, Timestream for metrics; state lives in memory only."""

    name = "moto"
    marker = "moto_server"

    @property
    def _endpoint(self) -> tuple[str, int]:
        return host_port(self.settings.aws.endpoint_url or "http://127.0.0.1:5050", 5050)

    @property
    def address(self) -> str:
        """The endpoint URL boto3 clients use."""
        return self.settings.aws.endpoint_url or ""

    def ports(self) -> list[tuple[str, int]]:
        """The HTTP listener."""
        return [self._endpoint]

    def prepare(self) -> Launch:
        """Find ``moto_server`` next to this Python (the venv) and describe the launch."""
        beside = Path(sys.executable).parent / "moto_server"
        server = str(beside) if beside.exists() else shutil.which("moto_server")
        if server is None:
            raise PrerequisiteError(
                "moto_server not found; install the dev extra "
                "(`.venv/bin/pip install -e '.[dev]'`, i.e. moto[server])"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        host, port = self._endpoint
        return Launch(cmd=[server, "-H", host, "-p", str(port)], cwd=self.home)

    def probe(self, timeout_s: float) -> str | None:
        """An S3 ``ListBuckets`` through boto3."""
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        aws = self.settings.aws
        try:
            client = boto3.client(
                "s3",
                endpoint_url=aws.endpoint_url,
                region_name=aws.region,
                aws_access_key_id=aws.access_key_id.get_secret_value(),
                aws_secret_access_key=aws.secret_access_key.get_secret_value(),
                config=Config(
                    connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 1}
                ),
            )
            client.list_buckets()
        except (BotoCoreError, ClientError) as exc:
            return error_text(exc)
        return None
