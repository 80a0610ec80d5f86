"""Ids and id filters that are not ids (found by schemathesis): a 404 or a 400, never a 500."""

import pytest

from tests.conftest import token_client
from tests.test_token_scope_matrix import ENDPOINTS

pytestmark = pytest.mark.django_db
NOT_IDS = [str(2**70), "9999999999999999999", "0", "abc", "null,null"]


@pytest.mark.parametrize("bad", NOT_IDS)
@pytest.mark.parametrize(("url", "method"), [(u, m) for u, m, _ in ENDPOINTS if "999999" in u], ids=lambda v: str(v))
def test_an_id_out_of_range_or_not_a_number_is_a_json_404(url, method, bad, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    response = getattr(token_client(root), method)(url.replace("999999", bad), {}, format="json")
    assert response.status_code == 404, (url, method, bad, response.content[:200])
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "query",
    ["/api/v1/findings/?version=99999999999999999999", "/api/v1/findings/?version=1.5",
     "/api/v1/versions/?plugin_id=99999999999999999999", "/api/v1/versions/?plugin_id=-3"],
)  # fmt: skip
def test_an_id_filter_out_of_range_is_a_400_naming_the_field(query, platform_admin):
    response = token_client(platform_admin).get(query)
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["field"] == query.split("?")[1].split("=")[0]
