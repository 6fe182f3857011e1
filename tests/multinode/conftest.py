"""Fixtures for object storage tests: moto's S3 server on loopback, behind a proxy a test can cut."""

import uuid
from dataclasses import dataclass

import pytest

from recommendations.serving import reset_cache
from tests.conftest import skip_or_fail
from tests.support import s3_server
from tests.support.tcp_proxy import TcpProxy

KEY = "testing"


@pytest.fixture(scope="session")
def s3_process(tmp_path_factory):
    """Run moto's S3 server for the whole session."""
    if not s3_server.available():
        skip_or_fail("moto[server] is not installed (requirements-dev.txt)")
    server = s3_server.S3Server(log_path=tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield server
    server.stop()


@dataclass
class Bucket:
    """A fresh bucket, reached through a proxy: ``proxy.cut()`` makes S3 unreachable."""

    name: str
    proxy: TcpProxy

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.proxy.port}"

    def env(self):
        """Return the settings of a process that keeps its files in this bucket."""
        return {
            "HYBRIDREC_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": self.name,
            "AWS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_S3_REGION_NAME": "us-east-1",
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": KEY,
        }

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=KEY,
            aws_secret_access_key=KEY,
        )

    def keys(self, prefix=""):
        listed = self.client().list_objects_v2(Bucket=self.name, Prefix=prefix)
        return [item["Key"] for item in listed.get("Contents", [])]


@pytest.fixture
def bucket(s3_process):
    """Return a new, empty bucket on the S3 server, reached through a proxy of its own."""
    proxy = TcpProxy("127.0.0.1", s3_process.port)
    made = Bucket(name=f"hr-{uuid.uuid4().hex[:12]}", proxy=proxy)
    made.client().create_bucket(Bucket=made.name)
    yield made
    proxy.close()


@pytest.fixture
def s3_storage(settings, bucket):
    """Keep this test's bundles and uploads in ``bucket`` through django-storages' S3 backend."""
    import botocore.config

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket.name,
                "endpoint_url": bucket.endpoint,
                "region_name": "us-east-1",
                "access_key": KEY,
                "secret_key": KEY,
                "file_overwrite": False,
                "client_config": botocore.config.Config(
                    connect_timeout=2, read_timeout=10, retries={"max_attempts": 1}
                ),
            },
        },
    }
    return bucket


@pytest.fixture
def fresh_model_cache(settings):
    """Give the test a model cache of its own, checking the registry at every request."""
    settings.HYBRIDREC_VERSION_CHECK_SECONDS = 0
    reset_cache()
    yield
    reset_cache()
