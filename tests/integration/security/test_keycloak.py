"""Against a real OIDC provider: Keycloak (from Maven Central, `make keycloak`) issues the tokens. Core and
Serving find its keys through its discovery document; our SDK gets tokens with the OAuth client-credentials
grant as Keycloak wants it (a form), and the roles come through the groups Keycloak puts in the token. A client
whose service account has no group is refused, naming the project and the role."""

from __future__ import annotations

from datetime import timedelta

import pytest

from provender import Client, Entity, Feature, FeatureTable, FileSource, ValueType
from provender.errors import PermissionDenied, Unauthenticated
from tests.auth import auth_platform
from tests.conftest import missing
from tests.keycloak import KeycloakNotAvailable, realm, running_keycloak


@pytest.fixture(scope="module")
def keycloak(tmp_path_factory):
    base = tmp_path_factory.mktemp("keycloak")
    clients = {"notebook": ("s3cret", ["fraud-team"]), "reporting": ("an0ther", [])}
    try:
        with running_keycloak(base, realm("ml", "provender", clients), audience="provender") as kc:
            yield kc
    except KeycloakNotAvailable as e:
        missing(str(e))


def test_the_sdk_with_keycloak_tokens_and_roles_from_its_groups(keycloak, postgres, redis_server, tmp_path):
    with auth_platform(
        postgres,
        redis_server,
        tmp_path / "platform",
        keycloak,
        tokens={},
        global_roles={"group:fraud-team": "writer"},
    ) as urls:

        def client(client_id: str, secret: str) -> Client:
            return Client(
                core_url=urls["core"],
                serving_url=urls["serving"],
                project="fraud",
                enable_auth=True,
                auth_provider="oauth",
                oauth_grant_type="client_credentials",
                oauth_client_id=client_id,
                oauth_client_secret=secret,
                oauth_audience="provender",
                oauth_token_request_url=keycloak.token_url,
            )

        notebook = client("notebook", "s3cret")
        who = notebook.whoami()
        assert who.authenticated and who.principal.startswith("user:")  # Keycloak's subject: the account's id
        assert "group:fraud-team" in who.identities
        notebook.apply(
            [
                Entity("rider_id", ValueType.INT64),
                FeatureTable(
                    name="rides",
                    entities=["rider_id"],
                    features=[Feature("count", ValueType.INT64)],
                    batch_source=FileSource(
                        event_timestamp_column="ts", file_url=(tmp_path / "src").as_uri()
                    ),
                    max_age=timedelta(hours=1),
                ),
            ]
        )
        for _ in range(50):  # Serving learns the table within its refresh interval
            try:
                online = notebook.get_online_features(["rides:count"], [{"rider_id": 3}]).to_dict()
                break
            except Exception:
                import time

                time.sleep(0.2)
        assert online == {"rider_id": [3], "rides:count": [None]}

        reporting = client("reporting", "an0ther")
        with pytest.raises(PermissionDenied, match="needs the reader role in project 'fraud'"):
            reporting.list_feature_tables()
        with pytest.raises(Unauthenticated, match="could not get a token"):
            client("reporting", "not-its-secret").list_feature_tables()
