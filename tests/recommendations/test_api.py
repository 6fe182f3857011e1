"""The recommendation endpoints: answers, every bad input as a 4xx naming it, auth, throttling, docs."""

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.test import APIClient
from rest_framework.views import APIView

from hybridrec.api.throttling import ScopedWindowThrottle
from modelstore import services
from tests import factories

pytestmark = pytest.mark.django_db

RECS = "/api/v1/recommendations/{}/"
SIMILAR = "/api/v1/items/{}/similar/"
BATCH = "/api/v1/recommendations/batch/"
HEALTH = "/api/v1/health/"
LONG_ID = "x" * 10_000


def assert_names(response, field, status=400):
    """Assert a JSON error answer with ``status`` whose body names ``field``."""
    assert response.status_code == status, response.content
    body = response.json()
    assert field in body["detail"]
    if status == 400:
        assert field in body["errors"]
    return body


# --- GET /api/v1/recommendations/<customer_id>/ ------------------------------------------------


def test_cf_recommendations_name_the_version_that_made_them(api, cf_version):
    response = api.get(RECS.format("C0001"), {"k": 5})

    assert response.status_code == 200
    body = response.json()
    assert body["customer_id"] == "C0001"
    assert body["strategy"] == "cf"
    assert body["fallback"] is None
    assert [item["rank"] for item in body["items"]] == [1, 2, 3, 4, 5]
    assert all(set(item) == {"item_id", "score", "rank"} for item in body["items"])
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert body["model"] == {
        "cf": {"id": cf_version.pk, "label": "cf-one", "sha256": cf_version.sha256, "source": "bundle"},
        "cb": None,
    }


def test_k_defaults_to_the_setting(api, settings, cf_version):
    settings.HYBRIDREC_DEFAULT_K = 7
    assert len(api.get(RECS.format("C0001")).json()["items"]) == 7


def test_an_unknown_customer_gets_popular_items(api, cf_version):
    response = api.get(RECS.format("nobody-knows-me"), {"k": 3})

    assert response.status_code == 200
    assert response.json()["fallback"] == "popular"
    assert len(response.json()["items"]) == 3


def test_excluded_items_are_left_out(api, cf_version):
    first = api.get(RECS.format("C0001"), {"k": 3}).json()["items"]
    left_out = [item["item_id"] for item in first[:2]]

    items = api.get(RECS.format("C0001"), {"k": 3, "exclude": ",".join(left_out)}).json()["items"]

    assert not {item["item_id"] for item in items} & set(left_out)
    assert len(items) == 3


def test_cb_for_a_customer_is_like_what_they_have_with_titles(api, cf_version, cb_version):
    body = api.get(RECS.format("C0001"), {"strategy": "cb", "k": 4}).json()

    assert body["fallback"] is None
    assert body["model"]["cb"]["id"] == cb_version.pk
    assert len(body["items"]) == 4
    assert all(item["title"].startswith("PRODUCT ") for item in body["items"])


def test_cb_for_an_unknown_customer_falls_back_to_popular(api, cf_version, cb_version):
    body = api.get(RECS.format("nobody"), {"strategy": "cb", "k": 4}).json()

    assert body["fallback"] == "popular"
    assert len(body["items"]) == 4


def test_hybrid_blends_both_and_weight_one_is_the_cf_ranking(api, cf_version, cb_version):
    cf_items = api.get(RECS.format("C0002"), {"k": 5}).json()["items"]

    blended = api.get(RECS.format("C0002"), {"strategy": "hybrid", "k": 5, "weight": "1"}).json()

    assert blended["model"]["cf"]["id"] == cf_version.pk
    assert blended["model"]["cb"]["id"] == cb_version.pk
    assert [item["item_id"] for item in blended["items"]] == [item["item_id"] for item in cf_items]
    assert api.get(RECS.format("C0002"), {"strategy": "hybrid", "weight": "0.3"}).status_code == 200


def test_hybrid_without_a_cb_model_says_cf_answered_alone(api, cf_version):
    body = api.get(RECS.format("C0002"), {"strategy": "hybrid"}).json()

    assert body["fallback"] == "cf"
    assert body["model"]["cb"] is None


def test_cb_without_a_cb_model_is_503_saying_so(api, cf_version):
    response = api.get(RECS.format("C0002"), {"strategy": "cb"})

    assert response.status_code == 503
    assert response.json()["code"] == "model_unavailable"
    assert response.json()["kind"] == "cb"
    assert "no cb model can be served" in response.json()["detail"]


def test_no_model_at_all_is_503_saying_so(api):
    response = api.get(RECS.format("C0001"))

    assert response.status_code == 503
    assert response.json()["kind"] == "cf"
    assert "no cf version is active" in response.json()["detail"]


@pytest.mark.parametrize("k", ["0", "-1", str(10**9), "abc", "1.5", "9" * 2000])
def test_a_bad_k_is_400_naming_k(api, cf_version, k):
    assert_names(api.get(RECS.format("C0001"), {"k": k}), "k")


def test_k_above_the_setting_is_refused(api, settings, cf_version):
    settings.HYBRIDREC_MAX_K = 20
    assert api.get(RECS.format("C0001"), {"k": 20}).status_code == 200
    assert_names(api.get(RECS.format("C0001"), {"k": 21}), "k")


@pytest.mark.parametrize("weight", ["-0.1", "1.5", "nan", "inf", "abc"])
def test_a_weight_outside_0_1_is_400_naming_weight(api, cf_version, weight):
    assert_names(api.get(RECS.format("C0001"), {"strategy": "hybrid", "weight": weight}), "weight")


def test_an_unknown_strategy_is_400_naming_strategy(api, cf_version):
    assert_names(api.get(RECS.format("C0001"), {"strategy": "magic"}), "strategy")


def test_a_10000_character_customer_id_is_400_naming_it(api, cf_version):
    assert_names(api.get(RECS.format(LONG_ID)), "customer_id")


def test_a_long_excluded_id_is_400_naming_exclude(api, cf_version):
    assert_names(api.get(RECS.format("C0001"), {"exclude": "a," + "b" * 500}), "exclude")


# --- GET /api/v1/items/<item_id>/similar/ ------------------------------------------------------


def test_similar_items_by_content(api, cb_version):
    body = api.get(SIMILAR.format("I003"), {"k": 5}).json()

    assert body["item_id"] == "I003"
    assert body["model"]["cb"]["id"] == cb_version.pk
    assert "I003" not in [item["item_id"] for item in body["items"]]
    assert [item["rank"] for item in body["items"]] == [1, 2, 3, 4, 5]
    assert all("title" in item for item in body["items"])


def test_an_unknown_item_is_404_naming_it(api, cb_version):
    response = api.get(SIMILAR.format("NOPE"))

    assert response.status_code == 404
    assert response.json()["item_id"] == "NOPE"
    assert "NOPE" in response.json()["detail"]


@pytest.mark.parametrize(("item_id", "query", "field"), [(LONG_ID, {}, "item_id"), ("I003", {"k": "0"}, "k")])
def test_bad_similar_requests_are_400(api, cb_version, item_id, query, field):
    assert_names(api.get(SIMILAR.format(item_id), query), field)


def test_similar_items_without_a_cb_model_is_503(api, cf_version):
    assert api.get(SIMILAR.format("I003")).status_code == 503


# --- POST /api/v1/recommendations/batch/ ---------------------------------------------------------


def test_batch_answers_one_entry_per_id_in_order(api, cf_version):
    ids = ["C0005", "nobody", "C0001", "C0040"]

    response = api.post(BATCH, {"customer_ids": ids, "k": 3}, format="json")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [entry["customer_id"] for entry in results] == ids
    assert [entry["fallback"] for entry in results] == [None, "popular", None, None]
    single = api.get(RECS.format("C0001"), {"k": 3}).json()
    assert results[2]["request_id"] != single["request_id"]  # every answer has its own id
    assert {**results[2], "request_id": ""} == {**single, "request_id": ""}


def test_batch_with_another_strategy(api, cf_version, cb_version):
    body = {"customer_ids": ["C0001", "C0002"], "strategy": "hybrid", "weight": 0.5, "exclude": ["I001"]}

    results = api.post(BATCH, body, format="json").json()["results"]

    assert [entry["strategy"] for entry in results] == ["hybrid", "hybrid"]
    assert all("I001" not in [item["item_id"] for item in entry["items"]] for entry in results)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_ids": []}, "customer_ids"),
        ({"customer_ids": "C0001"}, "customer_ids"),
        ({}, "customer_ids"),
        ({"customer_ids": ["C0001", LONG_ID]}, "customer_ids"),
        ({"customer_ids": ["C0001"], "k": 0}, "k"),
        ({"customer_ids": ["C0001"], "k": "abc"}, "k"),
        ({"customer_ids": ["C0001"], "strategy": "x"}, "strategy"),
        ({"customer_ids": ["C0001"], "weight": 2}, "weight"),
        ({"customer_ids": ["C0001"], "exclude": "I001"}, "exclude"),
    ],
)
def test_bad_batches_are_400_naming_the_field(api, cf_version, body, field):
    assert_names(api.post(BATCH, body, format="json"), field)


def test_a_batch_over_the_limit_is_400(api, settings, cf_version):
    settings.HYBRIDREC_MAX_BATCH = 10
    assert api.post(BATCH, {"customer_ids": ["C0001"] * 10}, format="json").status_code == 200
    body = assert_names(api.post(BATCH, {"customer_ids": ["C0001"] * 11}, format="json"), "customer_ids")
    assert "10" in body["detail"]


def test_a_batch_that_is_not_json_is_400(api, cf_version):
    response = api.post(BATCH, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


# --- GET /api/v1/health/ ------------------------------------------------------------------------


def test_health_is_public_and_names_what_is_served_without_detail(cf_version):
    response = APIClient().get(HEALTH)

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["can_serve"], body["database"], body["reasons"]) == ("ok", True, "ok", [])
    assert body["cb_loaded"] is False
    cf = body["models"]["cf"]
    assert (cf["id"], cf["label"], cf["source"], cf["serving_active"]) == (
        cf_version.pk,
        "cf-one",
        "bundle",
        True,
    )
    assert "load_seconds" not in cf and "last_error" not in cf and "check_error" not in body


def test_staff_get_the_health_detail(client_for, cf_version):
    assert "load_seconds" not in client_for("user").get(HEALTH).json()["models"]["cf"]
    cf = client_for("staff").get(HEALTH).json()["models"]["cf"]
    assert (cf["memory_mapped"], cf["last_error"]) == (True, None)
    assert cf["load_seconds"] >= 0


def test_health_is_503_without_a_cf_model():
    response = APIClient().get(HEALTH)

    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["can_serve"], body["models"]["cf"]["loaded"]) == (
        "unavailable",
        False,
        False,
    )
    assert "no cf model can be served" in body["reasons"]


def test_health_reports_a_refused_version_in_words_to_the_public_and_in_detail_to_staff(
    api, client_for, settings, cf_version, cf_version_two
):
    api.get(RECS.format("C0001"))
    path = settings.MEDIA_ROOT / cf_version_two.file.name
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    services.version_activate(version=cf_version_two)
    from recommendations.serving import get_cache

    get_cache()._next_check = 0.0
    assert api.get(RECS.format("C0001")).json()["model"]["cf"]["id"] == cf_version.pk

    public = APIClient().get(HEALTH).json()
    assert public["status"] == "degraded"
    assert public["reasons"] == [
        "cf version cf-two stopped being served: its file changed on disk; cf-one serves"
    ]
    assert str(settings.MEDIA_ROOT) not in str(public) and "sha256 " not in str(public)
    error = client_for("staff").get(HEALTH).json()["models"]["cf"]["last_error"]
    assert error["id"] == cf_version_two.pk
    assert "changed on disk" in error["message"]


def test_live_answers_200_and_ready_needs_a_cf_model(settings, cf_version_two):
    settings.HYBRIDREC_VERSION_CHECK_SECONDS = 0
    client = APIClient()
    assert client.get(HEALTH + "live/").status_code == 200
    response = client.get(HEALTH + "ready/")
    assert response.status_code == 503
    assert response.json()["reasons"] == ["no cf model is loaded"]

    services.version_activate(version=cf_version_two)
    response = client.get(HEALTH + "ready/")
    assert (response.status_code, response.json()["ready"]) == (200, True)


# --- authentication, throttling ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("get", RECS.format("C0001"), None),
        ("get", SIMILAR.format("I001"), None),
        ("post", BATCH, {"customer_ids": ["C0001"]}),
        ("get", "/api/v1/models/", None),
    ],
)
def test_anonymous_requests_are_401(cf_version, method, url, data):
    response = getattr(APIClient(), method)(url, data, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_a_bad_token_is_401(cf_version):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get(RECS.format("C0001")).status_code == 401


def test_a_token_made_by_drf_create_token_works(cf_version, user):
    call_command("drf_create_token", "reader", verbosity=0)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get(user=user).key}")

    assert client.get(RECS.format("C0001")).status_code == 200


def test_a_session_works(cf_version, user):
    client = APIClient()
    client.force_login(user)
    assert client.get(RECS.format("C0001")).status_code == 200


def test_anonymous_reads_when_the_api_is_public(monkeypatch, cf_version):
    # What HYBRIDREC_PUBLIC_API=true does to REST_FRAMEWORK, which DRF reads once at import.
    monkeypatch.setattr(APIView, "permission_classes", [AllowAny])
    client = APIClient()

    assert client.get(RECS.format("C0001")).status_code == 200
    assert client.post(BATCH, {"customer_ids": ["C0001"]}, format="json").status_code == 200
    assert client.post("/api/v1/models/rollback/", {"kind": "cf"}, format="json").status_code == 401


def test_requests_over_the_rate_are_429(monkeypatch, api, cf_version):
    rates = {**ScopedWindowThrottle.THROTTLE_RATES, "recommendations": "2/min"}
    monkeypatch.setattr(ScopedWindowThrottle, "THROTTLE_RATES", rates)
    assert [api.get(RECS.format("C0001")).status_code for _ in range(2)] == [200, 200]

    response = api.get(RECS.format("C0001"))

    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert api.post(BATCH, {"customer_ids": ["C0001"]}, format="json").status_code == 200  # its own scope


# --- the OpenAPI schema, Swagger UI, unknown URLs ---------------------------------------------------


def test_the_openapi_schema_lists_every_endpoint(api):
    response = api.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {
        "/api/v1/recommendations/{customer_id}/",
        "/api/v1/recommendations/batch/",
        "/api/v1/items/{item_id}/similar/",
        "/api/v1/models/",
        "/api/v1/models/{version}/",
        "/api/v1/models/{version}/activate/",
        "/api/v1/models/{version}/verify/",
        "/api/v1/models/rollback/",
        "/api/v1/health/",
    } <= set(schema["paths"])
    parameters = {
        p["name"] for p in schema["paths"]["/api/v1/recommendations/{customer_id}/"]["get"]["parameters"]
    }
    assert {"k", "strategy", "weight", "exclude"} <= parameters


def test_swagger_ui_is_served_from_the_app_without_a_cdn(client, user, settings):
    settings.DEBUG = False
    client.force_login(user)
    page = client.get("/api/docs/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn" not in html.lower()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    script = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert script.status_code == 200


def test_an_unknown_api_url_is_a_json_404(client):
    response = client.get("/api/v1/nothing-here/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_seed_data_gives_other_answers_for_another_version(api, register, cf_version):
    """A sanity check that the fixtures differ: two versions, two rankings."""
    first = api.get(RECS.format("C0001"), {"k": 5}).json()["items"]
    other = register("cf", factories.cf_array_set(seed=5), activate=True)
    from recommendations.serving import reset_cache

    reset_cache()
    second = api.get(RECS.format("C0001"), {"k": 5}).json()
    assert second["model"]["cf"]["id"] == other.pk
    assert [item["item_id"] for item in second["items"]] != [item["item_id"] for item in first]


# --- what the scores are, and titles ---------------------------------------------------------


def test_every_answer_says_what_its_scores_are_and_fallback_scores_share_the_0_to_1_scale(
    api, cf_version, cb_version
):
    kinds = {
        strategy: api.get(RECS.format("C0001"), {"strategy": strategy, "k": 5}).json()["score_kind"]
        for strategy in ("cf", "cb", "hybrid")
    }
    assert kinds == {"cf": "cf", "cb": "cb", "hybrid": "hybrid"}
    assert api.get(SIMILAR.format("I001"), {"k": 3}).json()["score_kind"] == "cb"

    stranger = api.get(RECS.format("nobody-knows-me"), {"k": 5}).json()
    assert stranger["fallback"] == "popular" and stranger["score_kind"] == "popular"
    scores = [item["score"] for item in stranger["items"]]
    assert scores[0] == 1.0 and all(0 < score <= 1 for score in scores)
    batch = api.post(BATCH, {"customer_ids": ["C0001", "nobody"], "k": 2}, format="json").json()
    assert [answer["score_kind"] for answer in batch["results"]] == ["cf", "popular"]


def test_cf_answers_carry_titles_once_a_cb_model_is_loaded(api, cf_version, cb_version):
    before = api.get(RECS.format("C0001"), {"k": 3}).json()
    assert all("title" not in item for item in before["items"])  # CB is loaded lazily: not yet

    api.get(SIMILAR.format("I001"), {"k": 3})  # loads CB
    for answer in (
        api.get(RECS.format("C0001"), {"k": 3}).json(),
        api.get(RECS.format("nobody-knows-me"), {"k": 3}).json(),
        api.post(BATCH, {"customer_ids": ["C0002"], "k": 3}, format="json").json()["results"][0],
    ):
        assert answer["score_kind"] in {"cf", "popular"}  # CB did not rank these answers ...
        for item in answer["items"]:  # ... but its titles name their items
            assert item["title"] == f"PRODUCT {int(item['item_id'][1:])}"
        assert answer["model"]["cb"]["id"] == cb_version.pk  # ... so the answer names its version


def test_the_schema_documents_score_kind(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    answer = schema["components"]["schemas"]["RecommendationAnswer"]
    assert "score_kind" in answer["required"]
    assert "share of the most popular item" in answer["properties"]["score_kind"]["description"]


def test_every_operation_has_its_own_one_line_summary(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    summaries = [
        operation.get("summary", "")
        for operations in schema["paths"].values()
        for operation in operations.values()
    ]

    assert all(summaries), summaries
    assert len(set(summaries)) == len(summaries)  # GET and POST of one path are told apart
    assert all(len(s) <= 120 and s.count("(") == s.count(")") and "\n" not in s for s in summaries)
