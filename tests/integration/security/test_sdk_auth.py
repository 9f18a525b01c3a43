"""Our SDK and CLI with authentication on, over TLS, as a notebook and an operator use them: the `oauth`
provider fetches a token with client credentials and fetches a new one before it expires; a static token is
sent as it is; roles are granted, listed and revoked with `provender access`; the audit log names the token's
principal."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from provender import Client, Entity, Feature, FeatureTable, FileSource, ValueType
from provender.errors import PermissionDenied, Unauthenticated
from provender.server.logs import JsonFormatter
from tests.auth import auth_platform
from tests.oidc import OAuthClient, test_issuer
from tests.tls import TestCA

ADMIN_TOKEN = "admin-token-for-the-sdk-test-0123456789"


def _table(base: Path) -> FeatureTable:
    return FeatureTable(
        name="driver_hourly",
        entities=["driver_id"],
        features=[Feature("trips", ValueType.INT64)],
        batch_source=FileSource(event_timestamp_column="ts", file_url=(base / "src").as_uri()),
        max_age=timedelta(hours=1),
    )


@pytest.fixture(scope="module")
def secured(postgres, redis_server, tmp_path_factory):
    base = tmp_path_factory.mktemp("sdk-auth")
    ca = TestCA(base / "ca")
    with test_issuer(lifetime=62) as issuer:  # tokens a minute and two seconds long: renewed after 2 s
        issuer.clients["notebook"] = OAuthClient("s3cret", groups=["ml"])
        with auth_platform(
            postgres,
            redis_server,
            base / "platform",
            issuer,
            tokens={"admin": ADMIN_TOKEN},
            global_roles={"token:admin": "admin"},
            ca=ca,
        ) as urls:
            yield {**urls, "ca": str(ca.path), "issuer": issuer, "base": base}


def _ssl(secured: dict) -> dict:
    return {
        "core_enable_ssl": True,
        "core_server_ssl_cert": secured["ca"],
        "serving_enable_ssl": True,
        "serving_server_ssl_cert": secured["ca"],
    }


def _cli(secured: dict, *args: str, token: str = ADMIN_TOKEN) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PROVENDER_CORE_URL": secured["core"],
        "PROVENDER_CORE_ENABLE_SSL": "true",
        "PROVENDER_CORE_SERVER_SSL_CERT": secured["ca"],
        "PROVENDER_AUTH_TOKEN": token,
        "PROVENDER_CONFIG": str(secured["base"] / "no-config"),
    }
    return subprocess.run(
        [sys.executable, "-m", "provender.cli", "access", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_notebook_with_oauth_client_credentials_over_tls(secured, caplog):
    issuer = secured["issuer"]
    admin = Client(
        core_url=secured["core"], serving_url=secured["serving"], auth_token=ADMIN_TOKEN, **_ssl(secured)
    )
    admin.grant_access("group:ml", "writer", project="default")
    notebook = Client(
        core_url=secured["core"],
        serving_url=secured["serving"],
        enable_auth=True,
        auth_provider="oauth",
        oauth_grant_type="client_credentials",
        oauth_client_id="notebook",
        oauth_client_secret="s3cret",
        oauth_audience=issuer.audience,
        oauth_token_request_url=issuer.url + "/token",
        **_ssl(secured),
    )
    with caplog.at_level(logging.INFO, "provender.audit"):
        notebook.apply([Entity("driver_id", ValueType.INT64), _table(secured["base"])])
    audit = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "provender.audit"]
    assert {(a["rpc"], a["principal"]) for a in audit} == {
        ("ApplyEntity", "user:notebook"),
        ("ApplyFeatureTable", "user:notebook"),
    }
    assert notebook.whoami().identities == ("user:notebook", "group:ml")
    requests = len(issuer.token_requests)
    time.sleep(2.5)  # the token now expires within the minute: the next call fetches a new one first
    assert [t.name for t in notebook.list_feature_tables()] == ["driver_hourly"]
    assert len(issuer.token_requests) == requests + 1
    # asked as RFC 6749 says, so that Keycloak, Okta and Entra ID answer too
    assert issuer.token_requests[-1]["content_type"] == "application/x-www-form-urlencoded"
    assert issuer.token_requests[-1]["audience"] == issuer.audience
    for _ in range(50):  # Serving learns the table and the role within its refresh intervals
        try:
            online = notebook.get_online_features(["driver_hourly:trips"], [{"driver_id": 1}]).to_dict()
            break
        except Exception:
            time.sleep(0.2)
    assert online == {"driver_id": [1], "driver_hourly:trips": [None]}

    with pytest.raises(PermissionDenied, match="needs the admin role in project 'default'"):
        notebook.delete_feature_table("driver_hourly")
    anonymous = Client(core_url=secured["core"], serving_url=secured["serving"], **_ssl(secured))
    with pytest.raises(Unauthenticated, match="requires a credential"):
        anonymous.list_feature_tables()
    with pytest.raises(Unauthenticated, match="requires a credential"):
        anonymous.get_online_features(["driver_hourly:trips"], [{"driver_id": 1}])
    wrong = Client(
        core_url=secured["core"],
        enable_auth=True,
        oauth_client_id="notebook",
        oauth_client_secret="not-the-secret",
        oauth_token_request_url=issuer.url + "/token",
        **_ssl(secured),
    )
    with pytest.raises(Unauthenticated, match="could not get a token"):
        wrong.list_projects()


def test_provender_access_grants_lists_and_revokes_roles(secured):
    granted = _cli(secured, "grant", "fraud", "token:ci", "writer")
    assert granted.returncode == 0, granted.stderr
    assert "granted writer in fraud to token:ci" in granted.stdout
    listed = _cli(secured, "list", "fraud")
    assert listed.returncode == 0, listed.stderr
    assert "token:ci" in listed.stdout and "writer" in listed.stdout and "token:admin" in listed.stdout
    assert "setting" in listed.stdout  # the admin's role in every project comes from Core's settings
    who = _cli(secured, "whoami")
    assert who.stdout.strip() == "token:admin", who
    revoked = _cli(secured, "revoke", "fraud", "token:ci")
    assert revoked.returncode == 0 and "revoked" in revoked.stdout, revoked.stderr
    again = _cli(secured, "revoke", "fraud", "token:ci")
    assert again.returncode == 1 and "does not exist in project 'fraud'" in again.stderr, again
    refused = _cli(secured, "grant", "fraud", "user:mallory", "admin", token="not-a-token")
    assert refused.returncode == 1 and "Unauthenticated" not in refused.stderr  # a message, not a class name
    assert "neither a known service token nor a JWT" in refused.stderr, refused.stderr
