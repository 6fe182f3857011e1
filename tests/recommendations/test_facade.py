"""The Python facade keeps the seed's call style and returns plain values."""

import json

import pytest

from recommendations.engines import UnknownItem
from recommendations.services import HybridRecommendationService
from recommendations.serving import ModelUnavailable

pytestmark = pytest.mark.django_db


def test_get_personalized_cf_in_the_seed_call_style(cf_version):
    items = HybridRecommendationService().get_personalized_cf("C0001", k=5)

    assert [item["rank"] for item in items] == [1, 2, 3, 4, 5]
    assert all(isinstance(item["item_id"], str) and isinstance(item["score"], float) for item in items)
    json.dumps(items)  # plain values only


def test_the_other_seed_methods(cf_version, cb_version):
    service = HybridRecommendationService()

    similar = service.get_similar_items("I003", k=4)
    hybrid = service.get_hybrid("C0001", k=4, weight=0.5)
    content = service.get_content_based("C0001", k=4)

    assert len(similar) == len(hybrid) == len(content) == 4
    assert "I003" not in [item["item_id"] for item in similar]
    assert all(item["title"].startswith("PRODUCT") for item in similar + hybrid + content)


def test_whole_answers_match_the_api(api, cf_version):
    answer = HybridRecommendationService().recommend("C0001", k=3, exclude="I001")

    served = api.get("/api/v1/recommendations/C0001/", {"k": 3, "exclude": "I001"}).json()
    # The API adds what only a served request has: its id and the experiment that counted it.
    assert {name: value for name, value in served.items() if name not in API_ONLY} == answer


API_ONLY = ("request_id", "experiment", "forced")


def test_a_batch_is_in_order_and_like_single_answers(cf_version):
    service = HybridRecommendationService()

    answers = service.recommend_batch(["C0003", "ghost"], k=4)

    assert [answer["customer_id"] for answer in answers] == ["C0003", "ghost"]
    assert answers[0] == service.recommend("C0003", k=4)
    assert answers[1]["fallback"] == "popular"


def test_an_unknown_customer_gets_popular_items(cf_version):
    answer = HybridRecommendationService().recommend("ghost", k=3)
    assert answer["fallback"] == "popular"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"k": 0}, "k must be"), ({"strategy": "magic"}, "strategy must be"), ({"weight": 2}, "weight must be")],
)
def test_bad_arguments_raise_value_error(cf_version, kwargs, message):
    with pytest.raises(ValueError, match=message):
        HybridRecommendationService().recommend("C0001", **kwargs)


def test_errors_are_the_serving_layers(cf_version):
    service = HybridRecommendationService()
    with pytest.raises(ModelUnavailable):
        service.get_similar_items("I003")


def test_an_unknown_item_raises_unknown_item(cb_version):
    with pytest.raises(UnknownItem):
        HybridRecommendationService().get_similar_items("NOPE")


def test_health_from_python(cf_version):
    assert HybridRecommendationService().health()["models"]["cf"]["id"] == cf_version.pk
