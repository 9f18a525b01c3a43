"""Authentication and per-project roles on every service, as a caller on the network meets them.

With authentication on, every RPC of every service (Core's registry, the JobService under both names and on its
own port, client support, access management, Serving and its columnar API) is called with no token, an expired
token, a token of another issuer and a valid token without a role in the project: each call is refused
UNAUTHENTICATED or PERMISSION_DENIED and nothing changes. The RPCs are taken from the services' descriptors, so
a new RPC is walked without editing this test. Then the roles do what they say: reader, writer and admin, granted
to a user, a group (from the token's claim) or a service token, take effect and are revoked; static tokens are
revoked by editing their file, without a restart; a rotated signing key is fetched; health stays open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provender.core.jobs.model import JobStatus, JobType
from provender.proto.feast.core import CoreService_pb2 as core_pb2
from provender.proto.feast.core import CoreService_pb2_grpc as core_grpc
from provender.proto.feast.core import JobService_pb2 as legacy_pb2
from provender.proto.feast.serving import ServingService_pb2 as serving_pb2
from provender.proto.feast.serving import ServingService_pb2_grpc as serving_grpc
from provender.proto.feast.types import Value_pb2
from provender.proto.feast_spark.api import JobService_pb2 as spark_pb2
from provender.proto.provender.core import Access_pb2 as access_pb2
from provender.proto.provender.core import Access_pb2_grpc as access_grpc
from provender.proto.provender.core import ClientSupport_pb2 as support_pb2
from provender.proto.provender.serving import ColumnarServing_pb2 as columnar_pb2
from tests import factories as f
from tests.auth import auth_platform, write_tokens
from tests.oidc import TestIssuer, test_issuer

ADMIN_TOKEN = "admin-token-0123456789abcdef"
CI_TOKEN = "ci-token-0123456789abcdef"

# (address key, the generated module holding the service, service name)
SERVICES = [
    ("core", core_pb2, "CoreService"),
    ("core", legacy_pb2, "JobService"),
    ("core", spark_pb2, "JobService"),
    ("core", support_pb2, "ClientSupportService"),
    ("core", access_pb2, "AccessService"),
    ("jobs", legacy_pb2, "JobService"),
    ("jobs", spark_pb2, "JobService"),
    ("serving", serving_pb2, "ServingService"),
    ("serving", columnar_pb2, "ColumnarServingService"),
]
# What any authenticated caller may call: version and client defaults, and listings that hold only what the
# caller may read.
OPEN_TO_ANY_CALLER = {
    "GetFeastCoreVersion",
    "ListStores",
    "ListProjects",
    "ListJobs",
    "GetClientDefaults",
    "GetRegistryRevision",
    "WhoAmI",
    "GetFeastServingInfo",
}


def _bearer(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


def _request(method: Any, job_id: str) -> Any:
    """The method's request aimed at project 'fraud' (and its job): every string field that names a project,
    a project's name or a job is filled."""
    request = message_factory.GetMessageClass(method.input_type)()
    fields = request.DESCRIPTOR.fields_by_name
    for name, value in (("project", "fraud"), ("job_id", job_id), ("table_name", "driver_hourly")):
        if name in fields:
            setattr(request, name, value)
    if "filter" in fields and "project" in request.filter.DESCRIPTOR.fields_by_name:
        request.filter.project = "fraud"
    if method.name in ("CreateProject", "ArchiveProject"):
        request.name = "fraud"
    if method.name == "GrantAccess":
        request.principal, request.role = "user:mallory", "admin"
    if method.name == "RevokeAccess":
        request.principal = "user:alice"
    return request


def _methods() -> Iterator[tuple[str, str, Any]]:
    for address, module, service in SERVICES:
        descriptor = module.DESCRIPTOR.services_by_name[service]
        for method in descriptor.methods:
            yield address, f"/{descriptor.full_name}/{method.name}", method


def _call(channel: grpc.Channel, path: str, method: Any, request: Any, token: str | None) -> Any:
    response_class = message_factory.GetMessageClass(method.output_type)
    stub = channel.unary_unary(
        path,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_class.FromString,
    )
    return stub(request, metadata=_bearer(token), timeout=10)


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with test_issuer() as issuer:
        yield issuer


@pytest.fixture(scope="module")
def platform(postgres, redis_server, tmp_path_factory, issuer) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("auth")
    with auth_platform(
        postgres,
        redis_server,
        base,
        issuer,
        tokens={"admin": ADMIN_TOKEN, "ci": CI_TOKEN},
        global_roles={"token:admin": "admin"},
    ) as urls:
        with grpc.insecure_channel(urls["core"]) as channel:
            core = core_grpc.CoreServiceStub(channel)
            admin = _bearer(ADMIN_TOKEN)
            core.ApplyEntity(
                core_pb2.ApplyEntityRequest(project="fraud", spec=f.entity("driver_id")), metadata=admin
            )
            core.ApplyFeatureTable(
                core_pb2.ApplyFeatureTableRequest(project="fraud", table_spec=f.table("driver_hourly")),
                metadata=admin,
            )
            access = access_grpc.AccessServiceStub(channel)
            for principal, role in (("user:alice", "writer"), ("group:fraud-readers", "reader")):
                access.GrantAccess(
                    access_pb2.GrantAccessRequest(project="fraud", principal=principal, role=role),
                    metadata=admin,
                )
        # A job record of the project, so that the RPCs that name a job have one to be refused on.
        store = urls["core_running"].controller.store
        job, _ = store.create_unless_active(
            "ingest-00000000000000aa", JobType.BATCH_INGESTION, "fraud", "driver_hourly", "local", {}
        )
        store.set_status(job.id, JobStatus.ERROR, "recorded by the test")
        urls["job_id"] = job.id
        yield urls


def _state(platform: dict[str, Any]) -> Any:
    """Everything a refused call could have changed, as the admin sees it."""
    with grpc.insecure_channel(platform["core"]) as channel:
        admin = _bearer(ADMIN_TOKEN)
        core = core_grpc.CoreServiceStub(channel)
        projects = core.ListProjects(core_pb2.ListProjectsRequest(), metadata=admin)
        tables = core.ListFeatureTables(
            core_pb2.ListFeatureTablesRequest(
                filter=core_pb2.ListFeatureTablesRequest.Filter(project="fraud")
            ),
            metadata=admin,
        )
        entities = core.ListEntities(
            core_pb2.ListEntitiesRequest(filter=core_pb2.ListEntitiesRequest.Filter(project="fraud")),
            metadata=admin,
        )
        bindings = access_grpc.AccessServiceStub(channel).ListAccessBindings(
            access_pb2.ListAccessBindingsRequest(), metadata=admin
        )
    jobs = platform["core_running"].controller.store.list(None, "", True)
    return (
        projects.SerializeToString(),
        tables.SerializeToString(),
        entities.SerializeToString(),
        [(b.project, b.principal, b.role) for b in bindings.bindings],
        [(j.id, j.status) for j in jobs],
    )


def test_every_rpc_of_every_service_refuses_callers_without_a_valid_credential_or_role(platform, issuer):
    other = TestIssuer()  # never started: its tokens are refused on their issuer alone
    credentials = {
        "no token": None,
        "expired token": issuer.mint("alice", expires_in=-120),
        "another issuer's token": other.mint("alice", issuer="https://login.elsewhere.example"),
        "another issuer's key": issuer.mint("alice", kid="unknown-kid", key=other.keys[other.kid]),
        "another audience": issuer.mint("alice", audience="some-other-service"),
        "an unknown static token": "not-a-token-of-this-deployment",
    }
    before = _state(platform)
    refused: dict[str, list[str]] = {}
    walked = 0
    channels = {key: grpc.insecure_channel(platform[key]) for key in ("core", "jobs", "serving")}
    try:
        for address, path, method in _methods():
            walked += 1
            request = _request(method, platform["job_id"])
            for label, token in credentials.items():
                with pytest.raises(grpc.RpcError) as e:
                    _call(channels[address], path, method, request, token)
                assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, (path, label, e.value.details())
                refused.setdefault(label, []).append(e.value.details())
            # A valid token of a user with no role anywhere.
            nobody = issuer.mint("bob", groups=["marketing"])
            if method.name in OPEN_TO_ANY_CALLER:
                answer = _call(channels[address], path, method, request, nobody)
                assert "fraud" not in str(answer), (path, "a listing shows what the caller may not read")
            else:
                with pytest.raises(grpc.RpcError) as e:
                    _call(channels[address], path, method, request, nobody)
                assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED, (path, e.value.details())
                project = "every project ('*')" if method.name == "UpdateStore" else "project 'fraud'"
                assert "user:bob needs the" in e.value.details() and project in e.value.details(), (
                    e.value.details()
                )
    finally:
        for channel in channels.values():
            channel.close()
    assert walked >= 53  # every method path of every service, not a few
    assert _state(platform) == before, "a refused call changed something"
    # The messages say what is wrong and what is expected.
    assert "requires a credential" in refused["no token"][0] and "Bearer" in refused["no token"][0]
    assert "expired at" in refused["expired token"][0]
    assert (
        "login.elsewhere.example" in refused["another issuer's token"][0]
        and issuer.url in refused["another issuer's token"][0]
    )
    assert "not signed by a current key" in refused["another issuer's key"][0]
    assert "some-other-service" in refused["another audience"][0]


def test_roles_of_users_groups_and_service_tokens_allow_what_they_say(platform, issuer):
    alice = _bearer(issuer.mint("alice"))  # writer in fraud
    carol = _bearer(issuer.mint("carol", groups=["fraud-readers"]))  # reader through her group
    ci = _bearer(CI_TOKEN)
    admin = _bearer(ADMIN_TOKEN)
    get_table = core_pb2.GetFeatureTableRequest(project="fraud", name="driver_hourly")
    apply_table = core_pb2.ApplyFeatureTableRequest(project="fraud", table_spec=f.table("driver_daily"))
    delete_table = core_pb2.DeleteFeatureTableRequest(project="fraud", name="driver_daily")
    lookup = serving_pb2.GetOnlineFeaturesRequestV2(
        project="fraud",
        features=[serving_pb2.FeatureReferenceV2(feature_table="driver_hourly", name="trips")],
        entity_rows=[
            serving_pb2.GetOnlineFeaturesRequestV2.EntityRow(
                fields={"driver_id": Value_pb2.Value(int64_val=7)}
            )
        ],
    )
    with grpc.insecure_channel(platform["core"]) as channel, grpc.insecure_channel(platform["serving"]) as sc:
        core = core_grpc.CoreServiceStub(channel)
        access = access_grpc.AccessServiceStub(channel)
        serving = serving_grpc.ServingServiceStub(sc)
        assert core.GetFeatureTable(get_table, metadata=carol).table.spec.name == "driver_hourly"
        serving.GetOnlineFeaturesV2(lookup, metadata=carol)
        with pytest.raises(grpc.RpcError) as e:
            core.ApplyFeatureTable(apply_table, metadata=carol)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "needs the writer role in project 'fraud' (it has reader)" in e.value.details()
        core.ApplyFeatureTable(apply_table, metadata=alice)
        with pytest.raises(grpc.RpcError) as e:  # deleting is the admin's
            core.DeleteFeatureTable(delete_table, metadata=alice)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED and "admin role" in e.value.details()
        assert core.ListProjects(core_pb2.ListProjectsRequest(), metadata=carol).projects == ["fraud"]

        # A service token gets a role like anyone; the admin grants and revokes it.
        with pytest.raises(grpc.RpcError):
            serving.GetOnlineFeaturesV2(lookup, metadata=ci)
        access.GrantAccess(
            access_pb2.GrantAccessRequest(project="fraud", principal="token:ci", role="reader"),
            metadata=admin,
        )
        _eventually(lambda: serving.GetOnlineFeaturesV2(lookup, metadata=ci))  # Serving's copy refreshes
        who = access.WhoAmI(access_pb2.WhoAmIRequest(), metadata=carol)
        assert (who.principal, list(who.identities), who.authenticated) == (
            "user:carol",
            ["user:carol", "group:fraud-readers"],
            True,
        )
        listed = access.ListAccessBindings(
            access_pb2.ListAccessBindingsRequest(project="fraud"), metadata=carol
        )
        assert ("token:ci", "reader", "grant", "token:admin") in {
            (b.principal, b.role, b.source, b.granted_by) for b in listed.bindings
        }
        access.RevokeAccess(
            access_pb2.RevokeAccessRequest(project="fraud", principal="token:ci"), metadata=admin
        )

        def refused() -> None:
            with pytest.raises(grpc.RpcError) as e:
                serving.GetOnlineFeaturesV2(lookup, metadata=ci)
            assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED

        _eventually(refused)
        core.DeleteFeatureTable(delete_table, metadata=admin)
        with pytest.raises(grpc.RpcError) as e:  # a writer cannot manage roles
            access.GrantAccess(
                access_pb2.GrantAccessRequest(project="fraud", principal="user:alice", role="admin"),
                metadata=alice,
            )
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_static_token_is_revoked_by_editing_its_file_without_a_restart(platform, tmp_path):
    with grpc.insecure_channel(platform["core"]) as channel:
        access = access_grpc.AccessServiceStub(channel)
        access.WhoAmI(access_pb2.WhoAmIRequest(), metadata=_bearer(CI_TOKEN))
        original = platform["tokens"].read_text()
        try:
            # A Kubernetes Secret update: the file is replaced, not edited in place.
            kept = [line for line in original.splitlines() if not line.startswith("ci ")]
            added = write_tokens(tmp_path / "added", {"ci2": "the-new-ci-token"}).read_text()
            (tmp_path / "tokens.new").write_text("\n".join(kept) + "\n" + added)
            (tmp_path / "tokens.new").replace(platform["tokens"])
            time.sleep(1.1)  # the files are looked at again at most once a second

            with pytest.raises(grpc.RpcError) as e:
                access.WhoAmI(access_pb2.WhoAmIRequest(), metadata=_bearer(CI_TOKEN))
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
            who = access.WhoAmI(access_pb2.WhoAmIRequest(), metadata=_bearer("the-new-ci-token"))
            assert who.principal == "token:ci2"
        finally:
            platform["tokens"].write_text(original)


def test_a_rotated_signing_key_is_fetched_and_health_needs_no_token(platform, issuer):
    fetched_before = issuer.jwks_requests
    issuer.rotate()
    token = issuer.mint("alice")
    with grpc.insecure_channel(platform["core"]) as channel, grpc.insecure_channel(platform["serving"]) as sc:
        access = access_grpc.AccessServiceStub(channel)

        def accepted() -> None:
            assert (
                access.WhoAmI(access_pb2.WhoAmIRequest(), metadata=_bearer(token)).principal == "user:alice"
            )

        # The keys are fetched again for an unknown key id, at most once per cooldown (10 s), so that tokens
        # with made-up key ids cannot make Core hammer the issuer; an earlier test's forged token may have
        # started one.
        _eventually(accepted, seconds=15)
        assert issuer.jwks_requests > fetched_before
        for ch in (channel, sc):
            answer = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
            assert answer.status == health_pb2.HealthCheckResponse.SERVING


def _eventually(check: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            check()
            return
        except (grpc.RpcError, AssertionError, pytest.fail.Exception):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        (_b64(json.dumps(header).encode()), _b64(json.dumps(claims, default=str).encode()), _b64(signature))
    )


_claims = st.fixed_dictionaries(
    {},
    optional={
        "iss": st.one_of(st.text(max_size=40), st.integers(), st.none()),
        "sub": st.one_of(st.text(max_size=40), st.integers(), st.lists(st.text(max_size=5), max_size=2)),
        "aud": st.one_of(st.text(max_size=20), st.lists(st.text(max_size=10), max_size=3), st.integers()),
        "exp": st.one_of(st.integers(min_value=-(2**63), max_value=2**63), st.text(max_size=10), st.floats()),
        "nbf": st.one_of(st.integers(min_value=-(2**40), max_value=2**40), st.text(max_size=10)),
        "groups": st.one_of(st.lists(st.text(max_size=10), max_size=3), st.text(max_size=10), st.integers()),
    },
)
_headers = st.fixed_dictionaries(
    {"alg": st.sampled_from(["none", "None", "HS256", "RS256", "ES256", "EdDSA", "", "PS512"])},
    optional={"kid": st.text(max_size=20), "typ": st.text(max_size=5), "jku": st.text(max_size=30)},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    token=st.one_of(
        st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200),  # header-legal
        st.builds(_forged, _headers, _claims, st.binary(max_size=64)),
        st.lists(st.text(alphabet="abcdefghAB012-_", max_size=30), min_size=2, max_size=5).map(".".join),
    ),
    scheme=st.sampled_from(["Bearer ", "bearer ", "Basic ", "", "Bearer  "]),
)
def test_fuzzed_and_forged_tokens_are_refused_unauthenticated_never_internal(platform, issuer, token, scheme):
    """Forged tokens (alg none, an HMAC signed with the issuer's public key, our issuer with any claims) and
    garbage: each is UNAUTHENTICATED with a message, on Core and on Serving."""
    with grpc.insecure_channel(platform["core"]) as channel:
        who = access_grpc.AccessServiceStub(channel)
        try:
            who.WhoAmI(access_pb2.WhoAmIRequest(), metadata=(("authorization", scheme + token),), timeout=10)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAUTHENTICATED, (token, e.details())
            assert e.details() and "Traceback" not in e.details()
        else:
            pytest.fail(f"{scheme + token!r} was accepted")


def test_a_token_signed_with_the_issuers_public_key_as_an_hmac_secret_is_refused(platform, issuer):
    """The classic key-confusion forgery: alg HS256 with the published RSA key as the secret."""
    from cryptography.hazmat.primitives import serialization

    public = (
        issuer.keys[issuer.kid]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"alg": "HS256", "kid": issuer.kid}
    claims = {"iss": issuer.url, "sub": "mallory", "aud": issuer.audience, "exp": int(time.time()) + 300}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{_b64(signature)}"
    unsigned = _forged({"alg": "none", "kid": issuer.kid}, claims)
    with grpc.insecure_channel(platform["core"]) as channel:
        for token in (forged, unsigned):
            with pytest.raises(grpc.RpcError) as e:
                access_grpc.AccessServiceStub(channel).WhoAmI(
                    access_pb2.WhoAmIRequest(), metadata=_bearer(token)
                )
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, e.value.details()
