"""From outside, on a real gunicorn: uploads that cost far more than their bytes are a quick 400."""

import time

import pytest
import requests

from tests.support.gunicorn import gunicorn, prepare, python, server_env

from .amplifiers import kinds

pytestmark = [pytest.mark.gunicorn, pytest.mark.slow]

SUPERUSER_TOKEN = """
import django
django.setup()
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
user = get_user_model().objects.create_superuser("uploader", password="pw-uploader-1")
print(Token.objects.create(user=user).key)
"""
UPLOADS = (
    "metadata list DAG",
    "colliding int keys",
    "colliding frozenset x200",
    "memo bytearray of text x1000",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gunicorn-uploads")
    env = server_env(folder, GUNICORN_TIMEOUT=30)
    prepare(env, folder)
    token = python(SUPERUSER_TOKEN, env)
    with gunicorn(env, folder / "gunicorn.log") as url:
        yield url, token, folder / "media" / "bundles"


@pytest.mark.parametrize("kind", UPLOADS)
def test_an_upload_costing_far_more_than_its_bytes_is_a_400_within_two_seconds(server, kind):
    url, token, bundles = server
    started = time.monotonic()

    response = requests.post(
        f"{url}/api/v1/models/",
        headers={"Authorization": f"Token {token}"},
        files={"file": ("upload.joblib", kinds()[kind])},
        timeout=60,
    )

    seconds = time.monotonic() - started
    print(f"{kind}: {response.status_code} in {seconds:.2f} s")
    assert response.status_code == 400, response.text[:300]
    assert response.json()["code"] in {"invalid_metadata", "corrupt_bundle", "bundle_too_large"}
    assert seconds < 2.0
    assert list(bundles.glob(".staging-*")) == []
    assert requests.get(f"{url}/api/v1/health/live/", timeout=5).status_code == 200
