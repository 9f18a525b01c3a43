"""The Helm chart (deploy/helm/provender), offline: Helm's own engine renders and lints it, every object is checked
against the Kubernetes schemas (strict), the Spark job template against the Spark operator's CRD, and the wiring
between the objects (addresses, ports, service accounts, security) is checked as a cluster would rely on it.

Nothing here talks to a cluster or the network; see docs/kubernetes.md for what only a real cluster can show.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import shutil
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import pytest
import yaml

from provender.core.launchers import k8s
from tests.helm import chart as c

pytestmark = pytest.mark.timeout(60)

# The main value combinations a user installs with. Each must render, lint and validate.
EXTERNAL = {
    "postgres": {"enabled": False},
    "externalPostgres": {"url": "postgresql://feast:s3cret@pg.example.internal:5432/registry"},
    "redis": {"enabled": False},
    "externalRedis": {"url": "rediss://:token@redis.example.internal:6380/0"},
}
EXTERNAL_SECRETS = {
    "postgres": {"enabled": False},
    "externalPostgres": {"existingSecret": "registry-db", "existingSecretKey": "url"},
    "redis": {"enabled": False},
    "externalRedis": {"existingSecret": "online-store", "existingSecretKey": "url"},
}
REDIS_CLUSTER = {
    "redis": {"enabled": False},
    "externalRedis": {
        "cluster": {
            "enabled": True,
            "nodes": ["redis-0.redis:6379", "redis-1.redis:6379", "redis-2.redis:6379"],
        }
    },
}
EXISTING_PASSWORD_SECRET = {
    "postgres": {"auth": {"existingSecret": "pg-auth", "existingSecretKey": "password"}}
}
SERVICE_MONITOR = {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus"}}}}
EVERYTHING = {
    "image": {"repository": "registry.example/provender", "tag": "1.2.3", "pullPolicy": "Always"},
    "imagePullSecrets": [{"name": "regcred"}],
    "commonLabels": {"team": "ml-platform"},
    "core": {"extraEnv": [{"name": "AWS_REGION", "value": "eu-west-1"}], "podAnnotations": {"a": "b"}},
    "serving": {
        "autoscaling": {"enabled": False},
        "replicaCount": 3,
        "podDisruptionBudget": {"enabled": False},
    },
    "postgres": {"auth": {"password": "given-Password.1"}, "persistence": {"enabled": False}},
    "redis": {"persistence": {"enabled": False, "size": "1Gi"}, "appendOnly": False},
    "kafka": {"bootstrapServers": "kafka-0.kafka.svc:9092,kafka-1.kafka.svc:9092"},
    "spark": {
        "stagingLocation": "s3://bucket/provender/staging",
        "image": "registry.example/provender-spark:1.2.3",
        "sparkConf": {
            "spark.hadoop.fs.s3a.endpoint": "http://minio.minio:9000",
            "spark.sql.shuffle.partitions": "8",
        },
        "env": [{"name": "AWS_REGION", "value": "eu-west-1"}],
        "envFromSecrets": [{"name": "AWS_ACCESS_KEY_ID", "secretName": "s3", "key": "access-key"}],
        "driver": {"cores": 2, "coreLimit": "2", "memory": "4g"},
        "executor": {"instances": 5, "cores": 4, "coreLimit": "4", "memory": "8g"},
    },
    "metrics": {
        "pushgatewayUrl": "http://pushgateway.monitoring:9091",
        "serviceMonitor": {"enabled": True, "interval": "15s"},
    },
    "grafana": {"dashboards": {"enabled": True}},
    "prometheusRule": {
        "enabled": True,
        "groups": [{"name": "provender", "rules": [{"alert": "CoreDown", "expr": "up{job='core'} == 0"}]}],
    },
}
TLS = {
    "tls": {
        "enabled": True,
        "clientAuth": True,
        "metrics": True,
        "certManager": {"enabled": True, "issuerRef": {"name": "internal-ca", "kind": "ClusterIssuer"}},
    }
}
# Authentication with everything set: OIDC, a Secret of extra service tokens, global roles, protected health checks.
AUTH = {
    "auth": {
        "oidc": {
            "issuer": "https://login.example.com/realms/ml",
            "audience": "provender",
            "groupsClaim": "roles",
        },
        "tokens": {"existingSecret": "ci-tokens", "existingSecretKey": "lines"},
        "globalRoles": {"group:ml-platform": "admin", "user:alice": "writer"},
        "protectHealth": True,
    }
}
NO_AUTH_NO_POLICIES = {"auth": {"enabled": False}, "networkPolicy": {"enabled": False}}
# Peers of each kind a user names: a namespace, a pod in a namespace, an address block.
PIPELINES = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ml-pipelines"}}}
MODEL_SERVERS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "online-models"}}}
PROMETHEUS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}
OFFICE = {"ipBlock": {"cidr": "10.20.0.0/16", "except": ["10.20.99.0/24"]}}
NETWORK_PEERS = {
    "networkPolicy": {
        "clients": [PIPELINES, OFFICE],
        "servingClients": [MODEL_SERVERS],
        "metricsFrom": [PROMETHEUS],
    }
}
CASES = {
    "defaults": {},
    "tls": TLS,
    "auth-everything-set": AUTH,
    "no-auth-no-network-policies": NO_AUTH_NO_POLICIES,
    "network-policy-peers": NETWORK_PEERS,
    "external-databases": EXTERNAL,
    "external-secrets": EXTERNAL_SECRETS,
    "redis-cluster": REDIS_CLUSTER,
    "existing-password-secret": EXISTING_PASSWORD_SECRET,
    "service-monitor": SERVICE_MONITOR,
    "everything-set": EVERYTHING,
}
case = pytest.mark.parametrize("values", CASES.values(), ids=CASES.keys())


def workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def container(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [x for x in pod_spec(doc)["containers"] if x["name"] == name]
    return found


def env_of(ctr: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in ctr.get("env", [])}


def env_value(ctr: dict[str, Any], name: str) -> str:
    """The env var's value, with $(VAR) references to plain values expanded as the kubelet does (references to
    variables fed from Secrets stay as they are)."""
    env = env_of(ctr)
    value = env[name]["value"]
    return re.sub(
        r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), {}).get("value", m.group(0)), value
    )


def service_address(svc: dict[str, Any], port_name: str) -> str:
    (port,) = [p["port"] for p in svc["spec"]["ports"] if p["name"] == port_name]
    return f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc:{port}"


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def pods_selected_by(docs: list[dict[str, Any]], selector: dict[str, str]) -> list[str]:
    return [
        w["metadata"]["name"]
        for w in workloads(docs)
        if selects(selector, w["spec"]["template"]["metadata"]["labels"])
    ]


# Render, lint, schemas ------------------------------------------------------------------------------------------


@case
def test_renders_and_lints_strict(values: dict[str, Any]) -> None:
    assert c.manifests(values)
    report = c.lint(values)
    assert report["errors"] == []
    # Strict lint: no warning or error; info-level advice (e.g. "icon is recommended") is allowed.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@case
def test_every_manifest_is_valid_kubernetes_strict(values: dict[str, Any]) -> None:
    checked = set()
    for doc in c.manifests(values):
        if c.is_crd_kind(doc):
            continue
        try:
            c.validate_builtin(doc)
        except jsonschema.ValidationError as e:
            pytest.fail(
                f"{doc['__template__']}: {doc['kind']} {doc['metadata']['name']}: {e.message} at {list(e.path)}"
            )
        checked.add(doc["kind"])
    assert {"Deployment", "Service", "ConfigMap", "Role", "RoleBinding", "ServiceAccount"} <= checked


def test_default_install_has_every_part() -> None:
    docs = c.manifests()
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert kinds == {
        ("Deployment", "provender-core"),
        ("Deployment", "provender-serving"),
        ("Service", "provender-core"),
        ("Service", "provender-serving"),
        ("Service", "provender-postgres"),
        ("Service", "provender-redis"),
        ("StatefulSet", "provender-postgres"),
        ("StatefulSet", "provender-redis"),
        ("Secret", "provender-postgres"),
        ("PodDisruptionBudget", "provender-core"),
        ("PodDisruptionBudget", "provender-serving"),
        ("HorizontalPodAutoscaler", "provender-serving"),
        ("ServiceAccount", "provender-core"),
        ("ServiceAccount", "provender-serving"),
        ("ServiceAccount", "provender-spark"),
        ("Role", "provender-core"),
        ("RoleBinding", "provender-core"),
        ("Role", "provender-spark"),
        ("RoleBinding", "provender-spark"),
        ("ConfigMap", "provender-spark-job-template"),
        ("Secret", "provender-auth"),
        ("NetworkPolicy", "provender-core"),
        ("NetworkPolicy", "provender-serving"),
        ("NetworkPolicy", "provender-postgres"),
        ("NetworkPolicy", "provender-redis"),
        ("NetworkPolicy", "provender-spark"),
    }
    for doc in docs:
        assert doc["metadata"]["namespace"] == c.NAMESPACE, doc["metadata"]["name"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/instance"] == c.RELEASE


def test_values_schema_accepts_the_defaults_and_rejects_wrong_values() -> None:
    chart = c.chart()
    chart.validate_schema(chart.values)
    for values in CASES.values():
        chart.validate_schema(chart.merge_values(values))
    wrong = [
        ({"core": {"port": "6565"}}, "/core/port"),
        ({"serving": {"autoscaling": {"enabled": "yes"}}}, "/serving/autoscaling/enabled"),
        ({"serving": {"replicas": 3}}, "replicas"),  # unknown key (a typo of replicaCount)
        ({"postgres": {"auth": {"password": "p@ss/word"}}}, "/postgres/auth/password"),
        (
            {"externalRedis": {"cluster": {"enabled": True, "nodes": ["redis://a:6379"]}}},
            "/externalRedis/cluster",
        ),
        ({"externalPostgres": {"url": "mysql://x"}}, "/externalPostgres/url"),
        ({"spark": {"sparkConf": {"spark.executor.instances": 3}}}, "/spark/sparkConf"),
        ({"spark": {"executor": {"memory": "2 GB"}}}, "/spark/executor/memory"),
        ({"securityContext": {"runAsNonRoot": False}}, "/securityContext/runAsNonRoot"),
        ({"core": {"replicaCount": -1}}, "/core/replicaCount"),
        ({"kafka": {"bootstrapServers": "kafka://broker:9092"}}, "/kafka/bootstrapServers"),
        # An OIDC issuer needs the audience of Provender's tokens.
        ({"auth": {"oidc": {"issuer": "https://login.example.com/realms/ml"}}}, "/auth/oidc"),
        ({"auth": {"globalRoles": {"group:ml-platform": "owner"}}}, "/auth/globalRoles"),
        ({"auth": {"globalRoles": {"ml-platform": "admin"}}}, "/auth/globalRoles"),  # no principal kind
        ({"auth": {"globalRoles": {"user:a,user:b": "reader"}}}, "/auth/globalRoles"),  # splits the variable
        ({"auth": {"tokens": {"existingSecretKey": ""}}}, "/auth/tokens/existingSecretKey"),
        ({"networkPolicy": {"clients": [{"namespace": "ml"}]}}, "/networkPolicy/clients/0"),
        (
            {"networkPolicy": {"metricsFrom": [{"ipBlock": {"cidr": "monitoring"}}]}},
            "/networkPolicy/metricsFrom/0",
        ),
        ({"networkPolicy": {"servingClients": {"podSelector": {}}}}, "/networkPolicy/servingClients"),
        # An ipBlock stands alone in a peer (the API server refuses it beside a selector).
        (
            {"networkPolicy": {"clients": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}},
            "/networkPolicy/clients/0",
        ),
    ]
    for values, where in wrong:
        with pytest.raises(helm.HelmValuesError) as raised:
            chart.validate_schema(chart.merge_values(values))
        assert where in str(raised.value), (values, str(raised.value))
        # `helm install` refuses them the same way.
        with pytest.raises(helm.HelmValuesError):
            c.chart().render(values, name=c.RELEASE, namespace=c.NAMESPACE)


def test_missing_external_database_is_a_clear_error() -> None:
    for values, message in [
        ({"postgres": {"enabled": False}}, "externalPostgres.url or externalPostgres.existingSecret"),
        (
            {"redis": {"enabled": False}},
            "externalRedis.url, externalRedis.cluster.nodes or externalRedis.existingSecret",
        ),
        (
            {"redis": {"enabled": False}, "externalRedis": {"cluster": {"enabled": True}}},
            "externalRedis.cluster.nodes",
        ),
    ]:
        with pytest.raises(helm.HelmRenderError, match=re.escape(message)):
            c.render(values)


# Wiring ----------------------------------------------------------------------------------------------------------


@case
def test_serving_points_at_the_core_service(values: dict[str, Any]) -> None:
    docs = c.manifests(values)
    core_svc = c.one(docs, "Service", "provender-core")
    serving = container(c.one(docs, "Deployment", "provender-serving"), "serving")
    assert (
        env_value(serving, "PROVENDER_CORE_URL")
        == service_address(core_svc, "grpc")
        == "provender-core.feast.svc:6565"
    )
    assert pods_selected_by(docs, core_svc["spec"]["selector"]) == ["provender-core"]
    serving_svc = c.one(docs, "Service", "provender-serving")
    assert pods_selected_by(docs, serving_svc["spec"]["selector"]) == ["provender-serving"]


def test_external_kafka_reaches_core_as_the_default_brokers() -> None:
    """kafka.bootstrapServers becomes Core's --kafka-bootstrap-servers (a Core setting that exists); unset, Core
    has no default and every KafkaSource names its brokers."""
    from provender.core.app import CoreSettings
    from provender.server.settings import ENV_PREFIX, flag_fields

    core = container(c.one(c.manifests(EVERYTHING), "Deployment", "provender-core"), "core")
    assert env_value(core, "PROVENDER_KAFKA_BOOTSTRAP_SERVERS") == EVERYTHING["kafka"]["bootstrapServers"]
    core_variables = {ENV_PREFIX + f.metadata["flag"].env for f in flag_fields(CoreSettings)}
    assert "PROVENDER_KAFKA_BOOTSTRAP_SERVERS" in core_variables
    default = container(c.one(c.manifests({}), "Deployment", "provender-core"), "core")
    assert "PROVENDER_KAFKA_BOOTSTRAP_SERVERS" not in {e["name"] for e in default["env"]}


def test_jobs_are_kept_to_the_staging_location_and_the_listed_storage(monkeypatch) -> None:
    """By default Core restricts jobs to its staging location; spark.allowedStorage adds prefixes, as Core reads
    them; spark.allowAnyStorage lifts the restriction; a prefix that is not a URL is refused by the schema."""
    from provender.core.app import CoreSettings

    def core_settings(values: dict) -> CoreSettings:
        core = container(c.one(c.manifests(values), "Deployment", "provender-core"), "core")
        env = {e["name"]: e["value"] for e in core["env"] if "value" in e}
        return settings_from_env(CoreSettings, env, monkeypatch)

    default = core_settings({})
    assert (default.restrict_storage, default.allowed_storage) == (True, [])
    listed = core_settings({"spark": {"allowedStorage": ["s3://lake/features", "s3://lake/fraud"]}})
    assert (listed.restrict_storage, listed.allowed_storage) == (
        True,
        ["s3://lake/features", "s3://lake/fraud"],
    )
    assert core_settings({"spark": {"allowAnyStorage": True}}).restrict_storage is False
    with pytest.raises(Exception, match="allowedStorage"):
        c.manifests({"spark": {"allowedStorage": ["/data/features"]}})


def test_tls_mounts_one_certificate_for_core_and_serving_and_probes_by_tcp() -> None:
    """tls.enabled: Core and Serving serve TLS from the Secret's files (mutual TLS and HTTPS metrics when asked),
    Serving trusts its CA for Core, the probes check the port (Kubernetes' gRPC probes cannot speak TLS), and a
    cert-manager Certificate names both Services. Off by default."""
    from provender.core.app import CoreSettings
    from provender.server.settings import ENV_PREFIX, flag_fields
    from provender.serving.app import ServingSettings

    docs = c.manifests(TLS)
    [cert] = [d for d in docs if d["kind"] == "Certificate"]
    secret = cert["spec"]["secretName"]
    assert secret == "provender-tls" and cert["spec"]["issuerRef"]["kind"] == "ClusterIssuer"
    assert {"provender-core.feast.svc", "provender-serving.feast.svc"} <= set(cert["spec"]["dnsNames"])
    assert set(cert["spec"]["usages"]) == {"server auth", "client auth"}
    for name, settings in (("core", CoreSettings), ("serving", ServingSettings)):
        deployment = c.one(docs, "Deployment", f"provender-{name}")
        ctr = container(deployment, name)
        env = {e["name"]: e.get("value") for e in ctr["env"]}
        mount = next(m["mountPath"] for m in ctr["volumeMounts"] if m["name"] == "tls")
        assert (
            env["PROVENDER_TLS_CERT"] == f"{mount}/tls.crt" and env["PROVENDER_TLS_KEY"] == f"{mount}/tls.key"
        )
        assert env["PROVENDER_TLS_CLIENT_CA"] == f"{mount}/ca.crt" and env["PROVENDER_METRICS_TLS"] == "true"
        known = {ENV_PREFIX + f.metadata["flag"].env for f in flag_fields(settings)}
        assert {k for k in env if k.startswith("PROVENDER_")} <= known, name
        [volume] = [v for v in pod_spec(deployment)["volumes"] if v["name"] == "tls"]
        assert volume["secret"]["secretName"] == secret
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert "tcpSocket" in ctr[probe] and "grpc" not in ctr[probe]
    serving = container(c.one(docs, "Deployment", "provender-serving"), "serving")
    assert {e["name"]: e.get("value") for e in serving["env"]}["PROVENDER_CORE_TLS_CA"].endswith("/ca.crt")
    plain = c.manifests({})
    assert not [d for d in plain if d["kind"] == "Certificate"]
    core = container(c.one(plain, "Deployment", "provender-core"), "core")
    assert "grpc" in core["readinessProbe"] and not any(
        e["name"].startswith("PROVENDER_TLS") for e in core["env"]
    )
    with pytest.raises(helm.HelmRenderError, match=re.escape("tls.certManager.issuerRef.name")):
        c.manifests({"tls": {"enabled": True, "certManager": {"enabled": True}}})


def test_services_expose_the_grpc_and_metrics_ports() -> None:
    docs = c.manifests()
    for name, ports in {
        "provender-core": {"grpc": 6565, "grpc-jobs": 6568, "metrics": 9090},
        "provender-serving": {"grpc": 6566, "metrics": 9090},
    }.items():
        svc = c.one(docs, "Service", name)
        assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == ports
        ctr = pod_spec(c.one(docs, "Deployment", name))["containers"][0]
        container_ports = {p["name"]: p["containerPort"] for p in ctr["ports"]}
        for port in svc["spec"]["ports"]:
            assert container_ports[port["targetPort"]] == port["port"]
    core = container(c.one(docs, "Deployment", "provender-core"), "core")
    assert core["args"][:5] == ["provender", "core", "--port", "6565", "--host"]
    assert env_value(core, "PROVENDER_JOB_PORT") == "6568"
    assert env_value(core, "PROVENDER_METRICS_PORT") == "9090"
    serving = container(c.one(docs, "Deployment", "provender-serving"), "serving")
    assert serving["args"][:4] == ["provender", "serving", "--port", "6566"]
    assert env_value(serving, "PROVENDER_METRICS_PORT") == "9090"


def test_bundled_postgres_and_redis_hosts_match_their_services() -> None:
    docs = c.manifests()
    pg_svc = c.one(docs, "Service", "provender-postgres")
    redis_svc = c.one(docs, "Service", "provender-redis")
    assert pods_selected_by(docs, pg_svc["spec"]["selector"]) == ["provender-postgres"]
    assert pods_selected_by(docs, redis_svc["spec"]["selector"]) == ["provender-redis"]

    core = container(c.one(docs, "Deployment", "provender-core"), "core")
    serving = container(c.one(docs, "Deployment", "provender-serving"), "serving")
    secret = c.one(docs, "Secret", "provender-postgres")
    password = base64.b64decode(secret["data"]["postgres-password"]).decode()
    assert re.fullmatch(r"[A-Za-z0-9]{24}", password)
    # Core's URL takes the password from the same Secret the Postgres server is initialised with.
    assert env_of(core)["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "provender-postgres",
        "key": "postgres-password",
    }
    pg = container(c.one(docs, "StatefulSet", "provender-postgres"), "postgres")
    assert env_of(pg)["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "provender-postgres",
        "key": "postgres-password",
    }
    url = env_value(core, "PROVENDER_POSTGRES_URL")
    assert (
        url == f"postgresql://provender:$(POSTGRES_PASSWORD)@{service_address(pg_svc, 'postgres')}/provender"
    )
    assert env_value(pg, "POSTGRES_USER") == "provender" and env_value(pg, "POSTGRES_DB") == "provender"
    # The kubelet only expands $(VAR) for variables defined earlier in the list.
    names = [e["name"] for e in core["env"]]
    assert names.index("POSTGRES_PASSWORD") < names.index("PROVENDER_POSTGRES_URL")

    redis_url = f"redis://{service_address(redis_svc, 'redis')}"
    assert env_value(core, "PROVENDER_REDIS_URL") == env_value(serving, "PROVENDER_REDIS_URL") == redis_url
    # Core waits for the bundled Postgres before migrating.
    (wait,) = pod_spec(c.one(docs, "Deployment", "provender-core"))["initContainers"]
    assert "provender-postgres.feast.svc" in " ".join(wait["command"])


def test_given_postgres_password_and_existing_secret() -> None:
    docs = c.manifests({"postgres": {"auth": {"password": "given-Password.1"}}})
    secret = c.one(docs, "Secret", "provender-postgres")
    assert base64.b64decode(secret["data"]["postgres-password"]) == b"given-Password.1"

    docs = c.manifests(EXISTING_PASSWORD_SECRET)
    assert c.find(docs, "Secret", "provender-postgres") == []
    ref = {"name": "pg-auth", "key": "password"}
    core = container(c.one(docs, "Deployment", "provender-core"), "core")
    pg = container(c.one(docs, "StatefulSet", "provender-postgres"), "postgres")
    assert env_of(core)["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == ref
    assert env_of(pg)["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == ref


def test_the_generated_password_is_kept_across_upgrades_by_lookup() -> None:
    # Offline, `lookup` finds nothing, so each render generates; what keeps it on upgrade is the template's
    # lookup of the Secret it created. Check that the template does so (a cluster is needed to see it work).
    (template,) = [t["data"] for t in c.chart().templates if t["name"] == "templates/postgres-secret.yaml"]
    assert 'lookup "v1" "Secret" .Release.Namespace $name' in template
    assert "randAlphaNum 24" in template
    assert "helm.sh/resource-policy: keep" in template


def test_external_databases_replace_the_bundled_ones() -> None:
    docs = c.manifests(EXTERNAL)
    assert c.find(docs, "StatefulSet") == [] and c.find(docs, "Secret", "provender-postgres") == []
    assert {s["metadata"]["name"] for s in c.find(docs, "Service")} == {"provender-core", "provender-serving"}
    core_deploy = c.one(docs, "Deployment", "provender-core")
    assert "initContainers" not in pod_spec(core_deploy)
    core = container(core_deploy, "core")
    serving = container(c.one(docs, "Deployment", "provender-serving"), "serving")
    assert env_value(core, "PROVENDER_POSTGRES_URL") == EXTERNAL["externalPostgres"]["url"]
    assert "POSTGRES_PASSWORD" not in env_of(core)
    assert (
        env_value(core, "PROVENDER_REDIS_URL")
        == env_value(serving, "PROVENDER_REDIS_URL")
        == EXTERNAL["externalRedis"]["url"]
    )

    docs = c.manifests(EXTERNAL_SECRETS)
    core = container(c.one(docs, "Deployment", "provender-core"), "core")
    serving = container(c.one(docs, "Deployment", "provender-serving"), "serving")
    assert env_of(core)["PROVENDER_POSTGRES_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "registry-db",
        "key": "url",
    }
    for ctr in (core, serving):
        assert env_of(ctr)["PROVENDER_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "online-store",
            "key": "url",
        }


def test_redis_cluster_seed_list() -> None:
    docs = c.manifests(REDIS_CLUSTER)
    assert c.find(docs, "StatefulSet", "provender-redis") == []
    seeds = "redis-0.redis:6379,redis-1.redis:6379,redis-2.redis:6379"
    for name in ("provender-core", "provender-serving"):
        ctr = pod_spec(c.one(docs, "Deployment", name))["containers"][0]
        assert env_value(ctr, "PROVENDER_REDIS_URL") == seeds
    # The bundled Postgres is unaffected.
    assert c.one(docs, "StatefulSet", "provender-postgres")


def test_core_launches_spark_jobs_from_the_mounted_template() -> None:
    docs = c.manifests({"spark": {"stagingLocation": "s3://bucket/staging"}})
    deploy = c.one(docs, "Deployment", "provender-core")
    core = container(deploy, "core")
    assert env_value(core, "PROVENDER_SPARK_LAUNCHER") == "k8s"
    assert env_value(core, "PROVENDER_STAGING_LOCATION") == "s3://bucket/staging"
    assert (
        env_of(core)["PROVENDER_K8S_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    )
    template_path = Path(env_value(core, "PROVENDER_K8S_JOB_TEMPLATE"))
    (mount,) = [m for m in core["volumeMounts"] if m["mountPath"] == str(template_path.parent)]
    (volume,) = [v for v in pod_spec(deploy)["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == "provender-spark-job-template"
    assert volume["configMap"]["items"] == [{"key": "job-template.yaml", "path": template_path.name}]
    assert (
        "kind: SparkApplication"
        in c.one(docs, "ConfigMap", volume["configMap"]["name"])["data"][template_path.name]
    )
    # A changed template rolls Core.
    changed = c.manifests({"spark": {"stagingLocation": "s3://bucket/staging", "executor": {"instances": 9}}})
    key = "checksum/job-template"
    before = deploy["spec"]["template"]["metadata"]["annotations"][key]
    after = c.one(changed, "Deployment", "provender-core")["spec"]["template"]["metadata"]["annotations"][key]
    assert before != after


def test_rbac_lets_core_drive_the_spark_operator_and_spark_run_its_pods() -> None:
    docs = c.manifests()
    core_deploy = c.one(docs, "Deployment", "provender-core")
    core_sa = pod_spec(core_deploy)["serviceAccountName"]
    assert core_sa == "provender-core"
    c.one(docs, "ServiceAccount", core_sa)

    role = c.one(docs, "Role", "provender-core")
    binding = c.one(docs, "RoleBinding", "provender-core")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "provender-core",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": core_sa, "namespace": c.NAMESPACE}]

    def allowed(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
        return any(
            group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules
        )

    for resource in ("sparkapplications", "scheduledsparkapplications"):
        for verb in ("create", "get", "list", "watch", "delete", "update", "patch"):
            assert allowed(role["rules"], "sparkoperator.k8s.io", resource, verb), (resource, verb)
    assert allowed(role["rules"], "", "pods/log", "get")
    # Core may not touch anything else (no secrets, no wildcard).
    assert not any("*" in r["verbs"] or "*" in r["resources"] for r in role["rules"])
    assert not allowed(role["rules"], "", "secrets", "get")

    spark_role = c.one(docs, "Role", "provender-spark")
    for resource in ("pods", "services", "configmaps", "persistentvolumeclaims"):
        for verb in ("create", "get", "list", "watch", "delete"):
            assert allowed(spark_role["rules"], "", resource, verb), (resource, verb)
    spark_binding = c.one(docs, "RoleBinding", "provender-spark")
    assert spark_binding["roleRef"]["name"] == "provender-spark"
    assert spark_binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "provender-spark", "namespace": c.NAMESPACE}
    ]
    c.one(docs, "ServiceAccount", "provender-spark")

    # Serving and the databases never call the Kubernetes API.
    for name in ("provender-serving",):
        assert pod_spec(c.one(docs, "Deployment", name))["automountServiceAccountToken"] is False
    for sts in c.find(docs, "StatefulSet"):
        assert pod_spec(sts)["automountServiceAccountToken"] is False


# The Spark job template ------------------------------------------------------------------------------------------


@case
def test_job_template_is_a_valid_sparkapplication(values: dict[str, Any]) -> None:
    template = c.job_template_text(values)
    assert set(c.PLACEHOLDER.findall(template)) == {"name", "main_application_file", "arguments"}
    app = c.fill_job_template(template, **c.SAMPLE_JOB)
    errors = sorted(c.sparkapplication_validator().iter_errors(app), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    assert app["apiVersion"] == "sparkoperator.k8s.io/v1beta2" and app["kind"] == "SparkApplication"
    assert app["metadata"]["name"] == c.SAMPLE_JOB["name"]
    assert app["spec"]["mainApplicationFile"] == "local:///opt/provender/jobs/ingestion.py"
    # The job's JSON arguments survive the template as one exact string.
    assert app["spec"]["arguments"] == c.SAMPLE_JOB["arguments"]
    assert json.loads(app["spec"]["arguments"][0])["note"].endswith("second line ü")
    assert app["spec"]["type"] == "Python" and app["spec"]["mode"] == "cluster"


@case
def test_job_template_namespace_and_service_account_match_the_rbac(values: dict[str, Any]) -> None:
    docs = c.manifests(values)
    app = c.fill_job_template(c.job_template_text(values), **c.SAMPLE_JOB)
    namespace = app["metadata"]["namespace"]
    # The launcher creates the application where Core's Role lets it.
    assert namespace == c.one(docs, "Role", "provender-core")["metadata"]["namespace"] == c.NAMESPACE
    core_env = env_of(container(c.one(docs, "Deployment", "provender-core"), "core"))
    assert core_env["PROVENDER_K8S_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    # Driver and executors run as the Spark service account, which the Spark RoleBinding grants.
    (subject,) = c.one(docs, "RoleBinding", "provender-spark")["subjects"]
    for role in ("driver", "executor"):
        assert app["spec"][role]["serviceAccount"] == subject["name"] == "provender-spark"
    assert subject["namespace"] == namespace


def test_job_template_carries_the_values() -> None:
    app = c.fill_job_template(c.job_template_text(EVERYTHING), **c.SAMPLE_JOB)
    spec = app["spec"]
    assert spec["image"] == "registry.example/provender-spark:1.2.3"
    assert spec["imagePullSecrets"] == ["regcred"]
    assert spec["sparkConf"] == EVERYTHING["spark"]["sparkConf"]
    assert (spec["driver"]["cores"], spec["driver"]["memory"]) == (2, "4g")
    assert (spec["executor"]["instances"], spec["executor"]["cores"], spec["executor"]["memory"]) == (
        5,
        4,
        "8g",
    )
    for role in ("driver", "executor"):
        env = {e["name"]: e for e in k8s.role_container(spec, role)["env"]}
        assert env["AWS_REGION"]["value"] == "eu-west-1"
        assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {"name": "s3", "key": "access-key"}
        assert spec[role]["labels"]["team"] == "ml-platform"
    default = c.fill_job_template(c.job_template_text(), **c.SAMPLE_JOB)["spec"]
    assert default["image"] == "provender/provender:0.1.0"
    assert default["sparkConf"] == {}


@pytest.mark.parametrize("values", [{}, EXTERNAL, EXTERNAL_SECRETS, REDIS_CLUSTER])
def test_job_drivers_get_the_redis_url_as_core_does_and_not_in_arguments(values: dict[str, Any]) -> None:
    """A job's arguments carry the Redis URL without its password; the driver takes the credentials from
    PROVENDER_REDIS_URL, which the template sets from the same value or Secret as Core's (the k8s launcher
    refuses a template without it when Core's Redis has a password)."""
    core = container(c.one(c.manifests(values), "Deployment", "provender-core"), "core")
    [core_redis] = [e for e in core["env"] if e["name"] == "PROVENDER_REDIS_URL"]
    spec = c.fill_job_template(c.job_template_text(values), **c.SAMPLE_JOB)["spec"]
    driver, executor = k8s.role_container(spec, "driver"), k8s.role_container(spec, "executor")
    assert [e for e in driver["env"] if e["name"] == "PROVENDER_REDIS_URL"] == [core_redis]
    assert "PROVENDER_REDIS_URL" not in {e["name"] for e in executor["env"]}


def test_job_template_override_is_used_verbatim() -> None:
    own = c.job_template_text().replace("timeToLiveSeconds: 86400", "timeToLiveSeconds: 60")
    assert c.job_template_text({"spark": {"templateOverride": own}}).strip() == own.strip()


# Probes, security, resources --------------------------------------------------------------------------------------


@case
def test_probes_use_grpc_health_on_the_grpc_ports(values: dict[str, Any]) -> None:
    """grpc.health.v1, or a TCP check with TLS on or health checks behind authentication (Kubernetes' gRPC probes
    can neither speak TLS nor send a token)."""
    docs = c.manifests(values)
    tcp = values.get("tls", {}).get("enabled") or values.get("auth", {}).get("protectHealth")
    kind = "tcpSocket" if tcp else "grpc"
    for name, port in (("provender-core", 6565), ("provender-serving", 6566)):
        ctr = pod_spec(c.one(docs, "Deployment", name))["containers"][0]
        grpc_port = {p["name"]: p["containerPort"] for p in ctr["ports"]}["grpc"]
        assert grpc_port == port
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert ctr[probe][kind] == {"port": port}, (name, probe)


@case
def test_every_container_is_non_root_with_a_read_only_root_filesystem(values: dict[str, Any]) -> None:
    docs = c.manifests(values)
    assert workloads(docs)
    for workload in workloads(docs):
        spec = pod_spec(workload)
        pod_sc = spec.get("securityContext", {})
        for ctr in spec.get("initContainers", []) + spec["containers"]:
            where = f"{workload['metadata']['name']}/{ctr['name']}"
            sc = ctr["securityContext"]
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
            assert sc.get("runAsUser", pod_sc.get("runAsUser")) not in (None, 0), where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert "resources" in ctr and ctr["resources"].get("requests"), where
            names = [e["name"] for e in ctr.get("env", [])]
            assert len(names) == len(set(names)), f"{where}: an env var defined twice: {names}"
            # A writable /tmp for every long-running container.
            if ctr in spec["containers"]:
                mounts = {m["mountPath"]: m["name"] for m in ctr["volumeMounts"]}
                volumes = {v["name"]: v for v in spec["volumes"]}
                assert "emptyDir" in volumes[mounts["/tmp"]], where
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    # The Spark pods get the same, from their pod templates.
    app = c.fill_job_template(c.job_template_text(values), **c.SAMPLE_JOB)
    for role in ("driver", "executor"):
        pod = app["spec"][role]["template"]["spec"]
        sc = k8s.role_container(app["spec"], role)["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["readOnlyRootFilesystem"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert {"name": "tmp", "mountPath": "/tmp"} in k8s.role_container(app["spec"], role)["volumeMounts"]
        assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]


# What the Spark operator applies only through its mutating webhook; the chart's template sets none of it, so jobs
# run the same with the webhook off (spark-submit applies the roles' pod templates itself).
WEBHOOK_ONLY = {
    "env",
    "envFrom",
    "volumeMounts",
    "securityContext",
    "podSecurityContext",
    "ports",
    "sidecars",
}


@case
def test_the_job_template_needs_no_operator_webhook(values: dict[str, Any]) -> None:
    spec = c.fill_job_template(c.job_template_text(values), **c.SAMPLE_JOB)["spec"]
    assert "volumes" not in spec
    for role in ("driver", "executor"):
        assert not WEBHOOK_ONLY & set(spec[role]), role
        (container,) = spec[role]["template"]["spec"]["containers"]
        assert container["name"] == (k8s.DRIVER_CONTAINER if role == "driver" else k8s.EXECUTOR_CONTAINER)


def test_disruption_budgets_and_autoscaling_target_the_right_pods() -> None:
    docs = c.manifests()
    for name in ("provender-core", "provender-serving"):
        pdb = c.one(docs, "PodDisruptionBudget", name)
        assert pods_selected_by(docs, pdb["spec"]["selector"]["matchLabels"]) == [name]
    assert c.one(docs, "PodDisruptionBudget", "provender-serving")["spec"]["minAvailable"] == 1
    hpa = c.one(docs, "HorizontalPodAutoscaler", "provender-serving")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "provender-serving",
    }
    assert hpa["spec"]["minReplicas"] >= 2
    # With the HPA on, the Deployment leaves replicas to it (no fight on every upgrade).
    assert "replicas" not in c.one(docs, "Deployment", "provender-serving")["spec"]
    no_hpa = c.manifests({"serving": {"autoscaling": {"enabled": False}, "replicaCount": 3}})
    assert c.find(no_hpa, "HorizontalPodAutoscaler") == []
    assert c.one(no_hpa, "Deployment", "provender-serving")["spec"]["replicas"] == 3
    # Core: two replicas, rolled (one elected leader runs the background loops; tests/unit/test_helm_core_replicas.py).
    core = c.one(docs, "Deployment", "provender-core")
    assert core["spec"]["replicas"] == 2 and core["spec"]["strategy"]["type"] == "RollingUpdate"
    assert c.one(docs, "PodDisruptionBudget", "provender-core")["spec"]["minAvailable"] == 1


def test_bundled_databases_keep_their_data_on_volumes() -> None:
    docs = c.manifests()
    for name, path in (("provender-postgres", "/var/lib/postgresql/data"), ("provender-redis", "/data")):
        sts = c.one(docs, "StatefulSet", name)
        (claim,) = sts["spec"]["volumeClaimTemplates"]
        assert claim["spec"]["resources"]["requests"]["storage"] == "8Gi"
        mounts = {m["name"]: m["mountPath"] for m in pod_spec(sts)["containers"][0]["volumeMounts"]}
        assert mounts[claim["metadata"]["name"]] == path
    redis_args = container(c.one(docs, "StatefulSet", "provender-redis"), "redis")["args"]
    assert redis_args[redis_args.index("--appendonly") + 1] == "yes"


# Authentication ---------------------------------------------------------------------------------------------------


def secret_data(doc: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in doc.get("data", {}).items()}


def project_secret_files(
    docs: list[dict[str, Any]],
    deployment: dict[str, Any],
    ctr: dict[str, Any],
    root: Path,
    others: dict[str, dict[str, str]] | None = None,
) -> dict[str, str]:
    """What the kubelet does for the container's Secret volumes, under `root`: each mounted item written as a file
    (from the chart's Secrets, or `others`: the user's Secrets by name). Returns the container's plain env values,
    their paths under a Secret mount moved under `root` too."""
    secrets = {d["metadata"]["name"]: secret_data(d) for d in c.find(docs, "Secret")} | (others or {})
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    mounts = []
    for mount in ctr["volumeMounts"]:
        secret = volumes[mount["name"]].get("secret")
        if secret is None:
            continue
        mounts.append(mount["mountPath"])
        data = secrets[secret["secretName"]]
        for item in secret.get("items") or [{"key": k, "path": k} for k in data]:
            path = root / mount["mountPath"].lstrip("/") / item["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(data[item["key"]])

    def rebase(part: str) -> str:
        under = any(part.startswith(m + "/") for m in mounts)
        return str(root / part.lstrip("/")) if under else part

    return {e["name"]: ",".join(rebase(p) for p in e["value"].split(",")) for e in ctr["env"] if "value" in e}


def settings_from_env(settings: type, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The settings a server reads from this environment (its PROVENDER_* variables, as `provender core` and
    `provender serving` read them)."""
    from provender.server.settings import ENV_PREFIX, build_parser, flag_fields, read

    for field in flag_fields(settings):
        monkeypatch.delenv(ENV_PREFIX + field.metadata["flag"].env, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return read(settings, build_parser(settings, "provender", "").parse_args([]))


def auth_variables(ctr: dict[str, Any]) -> set[str]:
    return {
        e["name"]
        for e in ctr["env"]
        if e["name"].startswith("PROVENDER_AUTH_") or e["name"] == "PROVENDER_CORE_TOKEN_FILE"
    }


def test_auth_secret_holds_two_generated_tokens_and_only_their_hashes_for_the_servers() -> None:
    """On by default: two random 40-character tokens (yours as admin, Serving's), and the `tokens` key with their
    sha256 in the `<name> sha256:<hex>` lines Core and Serving read."""
    from provender.server.authn import hash_token

    docs = c.manifests()
    secret = c.one(docs, "Secret", "provender-auth")
    data = secret_data(secret)
    assert set(data) == {"admin-token", "serving-token", "tokens"}
    admin, serving = data["admin-token"], data["serving-token"]
    assert re.fullmatch(r"[A-Za-z0-9]{40}", admin) and re.fullmatch(r"[A-Za-z0-9]{40}", serving)
    assert admin != serving
    assert data["tokens"].splitlines() == [
        f"admin sha256:{hashlib.sha256(admin.encode()).hexdigest()}",
        f"provender-serving sha256:{hashlib.sha256(serving.encode()).hexdigest()}",
    ]
    assert data["tokens"].split()[1] == hash_token(admin)
    # A new install gets new tokens.
    again = secret_data(c.one(c.manifests({"commonLabels": {"x": "y"}}), "Secret", "provender-auth"))
    assert again["admin-token"] != admin


def test_the_generated_tokens_are_kept_across_upgrades_by_lookup(tmp_path: Path) -> None:
    """Offline, `lookup` finds nothing and each render generates. Here the template's lookup is replaced by the
    Secret a previous install created (as the API server would return it): its tokens are kept, hashes included."""
    (template,) = [t["data"] for t in c.chart().templates if t["name"] == "templates/auth-secret.yaml"]
    lookup = 'lookup "v1" "Secret" .Release.Namespace $name'
    assert lookup in template and "randAlphaNum 40" in template

    previous = {"admin-token": "A" * 40, "serving-token": "S" * 40}
    found = " ".join(f'"{k}" "{base64.b64encode(v.encode()).decode()}"' for k, v in previous.items())
    chart_dir = tmp_path / "provender"
    shutil.copytree(c.CHART, chart_dir)
    path = chart_dir / "templates" / "auth-secret.yaml"
    path.write_text(path.read_text().replace(lookup, f'dict "data" (dict {found})'))
    rendered = helm.Chart.load(chart_dir).render({}, name=c.RELEASE, namespace=c.NAMESPACE, is_upgrade=True)
    (secret,) = [
        d
        for d in yaml.safe_load_all(rendered["provender/templates/auth-secret.yaml"])
        if d and d["kind"] == "Secret"
    ]
    data = secret_data(secret)
    assert {k: data[k] for k in previous} == previous
    assert data["tokens"] == (
        f"admin sha256:{hashlib.sha256(b'A' * 40).hexdigest()}\n"
        f"provender-serving sha256:{hashlib.sha256(b'S' * 40).hexdigest()}\n"
    )


def test_auth_wiring_lets_the_admin_and_serving_tokens_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default install, as its containers see it: the Secret's keys projected as files where the volumes
    mount them, the env read by Core's and Serving's own settings. The admin token is token:admin at both;
    Serving's token file holds the token Core knows as token:provender-serving, reader in every project."""
    from provender.core.app import CoreSettings
    from provender.server.principal import Principal
    from provender.server.settings import ENV_PREFIX, flag_fields
    from provender.serving.app import ServingSettings

    docs = c.manifests()
    data = secret_data(c.one(docs, "Secret", "provender-auth"))
    servers = {}
    for name, settings in (("core", CoreSettings), ("serving", ServingSettings)):
        deployment = c.one(docs, "Deployment", f"provender-{name}")
        ctr = container(deployment, name)
        known = {ENV_PREFIX + f.metadata["flag"].env for f in flag_fields(settings)}
        assert {e["name"] for e in ctr["env"] if e["name"].startswith("PROVENDER_")} <= known, name
        [volume] = [v for v in pod_spec(deployment)["volumes"] if v["name"] == "auth"]
        assert volume["secret"]["secretName"] == "provender-auth"
        env = project_secret_files(docs, deployment, ctr, tmp_path / name)
        servers[name] = settings_from_env(settings, env, monkeypatch)
        assert env_value(ctr, "PROVENDER_AUTH_TOKENS_FILE") == "/etc/provender-auth/tokens"
        assert env_value(ctr, "PROVENDER_AUTH_PROTECT_HEALTH") == "false"
        assert not any(v.startswith("PROVENDER_AUTH_OIDC") or v == "PROVENDER_AUTH_GROUPS_CLAIM" for v in env)
    core, serving = servers["core"], servers["serving"]
    # Core gets the hashes only, Serving its own token besides.
    core_items = [
        v for v in pod_spec(c.one(docs, "Deployment", "provender-core"))["volumes"] if v["name"] == "auth"
    ]
    assert core_items[0]["secret"]["items"] == [{"key": "tokens", "path": "tokens"}]
    serving_ctr = container(c.one(docs, "Deployment", "provender-serving"), "serving")
    assert env_value(serving_ctr, "PROVENDER_CORE_TOKEN_FILE") == "/etc/provender-auth/serving-token"
    assert "PROVENDER_CORE_TOKEN_FILE" not in env_of(
        container(c.one(docs, "Deployment", "provender-core"), "core")
    )

    admin = f"Bearer {data['admin-token']}"
    assert core.authenticator().authenticate(admin) == Principal("token", "admin")
    assert serving.authenticator().authenticate(admin) == Principal("token", "admin")
    presented = Path(serving.core_token_file).read_text().strip()
    assert core.authenticator().authenticate(f"Bearer {presented}") == Principal("token", "provender-serving")
    assert core.auth_global_roles == {"token:admin": "admin", "token:provender-serving": "reader"}
    assert core.auth_protect_health is False and core.authenticator().oidc is None


def test_auth_values_reach_both_servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OIDC issuer, audience and groups claim in both; the user's token Secret as a second file in both; the
    global roles in Core, beside the chart's; health checks behind authentication, so the probes are TCP."""
    from provender.core.app import CoreSettings
    from provender.server.authn import hash_token
    from provender.server.principal import Principal
    from provender.serving.app import ServingSettings

    docs = c.manifests(AUTH)
    ci_token = "ci-pipeline-token-0123456789"
    ci_secret = {"ci-tokens": {"lines": f"# CI\nci {hash_token(ci_token)}\n"}}
    for name, settings in (("core", CoreSettings), ("serving", ServingSettings)):
        deployment = c.one(docs, "Deployment", f"provender-{name}")
        ctr = container(deployment, name)
        [extra] = [v for v in pod_spec(deployment)["volumes"] if v["name"] == "auth-extra"]
        assert extra["secret"] == {"secretName": "ci-tokens", "items": [{"key": "lines", "path": "tokens"}]}
        assert env_value(ctr, "PROVENDER_AUTH_TOKENS_FILE") == (
            "/etc/provender-auth/tokens,/etc/provender-auth-extra/tokens"
        )
        env = project_secret_files(docs, deployment, ctr, tmp_path / name, ci_secret)
        server = settings_from_env(settings, env, monkeypatch)
        authenticator = server.authenticator()
        assert authenticator.tokens is not None and len(authenticator.tokens.files) == 2
        assert authenticator.authenticate(f"Bearer {ci_token}") == Principal("token", "ci")
        oidc = authenticator.oidc
        assert (oidc.issuer, oidc.audience, oidc.groups_claim) == (
            "https://login.example.com/realms/ml",
            "provender",
            "roles",
        )
        assert server.auth_protect_health is True and authenticator.protect_health is True
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert "tcpSocket" in ctr[probe] and "grpc" not in ctr[probe], (name, probe)
        if name == "core":
            assert server.auth_global_roles == {
                "group:ml-platform": "admin",
                "token:admin": "admin",
                "token:provender-serving": "reader",
                "user:alice": "writer",
            }
    # An entry for one of the chart's principals replaces the chart's (no second, conflicting entry).
    core = container(
        c.one(
            c.manifests({"auth": {"globalRoles": {"token:provender-serving": "writer"}}}),
            "Deployment",
            "provender-core",
        ),
        "core",
    )
    assert (
        env_value(core, "PROVENDER_AUTH_GLOBAL_ROLES") == "token:admin=admin,token:provender-serving=writer"
    )


def test_auth_disabled_renders_no_secret_no_variables_no_volumes(monkeypatch: pytest.MonkeyPatch) -> None:
    from provender.core.app import CoreSettings
    from provender.serving.app import ServingSettings

    docs = c.manifests({"auth": {"enabled": False, "protectHealth": True}})
    assert c.find(docs, "Secret", "provender-auth") == []
    for name, settings in (("core", CoreSettings), ("serving", ServingSettings)):
        deployment = c.one(docs, "Deployment", f"provender-{name}")
        ctr = container(deployment, name)
        assert auth_variables(ctr) == set()
        assert not {"auth", "auth-extra"} & {v["name"] for v in pod_spec(deployment)["volumes"]}
        assert not {"auth", "auth-extra"} & {m["name"] for m in ctr["volumeMounts"]}
        assert "grpc" in ctr["readinessProbe"]  # protectHealth means nothing without authentication
        env = {e["name"]: e["value"] for e in ctr["env"] if "value" in e}
        assert settings_from_env(settings, env, monkeypatch).authenticator() is None
    assert "admin-token" not in c.render({"auth": {"enabled": False}})["templates/NOTES.txt"]


def test_notes_tell_how_to_read_the_admin_token_and_use_it() -> None:
    notes = c.render()["templates/NOTES.txt"]
    read_token = (
        "kubectl --namespace feast get secret provender-auth -o jsonpath='{.data.admin-token}' | base64 -d"
    )
    assert read_token in notes
    assert "enable_auth=True, auth_token=" in notes
    assert "PROVENDER_ENABLE_AUTH=true" in notes and "PROVENDER_AUTH_TOKEN=" in notes
    assert "provender access grant PROJECT PRINCIPAL ROLE" in notes
    # The SDK options and variables NOTES names are the SDK's own.
    from provender.config import Config

    assert {"enable_auth", "auth_token"} <= set(Config.__dataclass_fields__)
    oidc = c.render(AUTH)["templates/NOTES.txt"]
    assert "https://login.example.com/realms/ml" in oidc and '"roles" claim' in oidc


# NetworkPolicies --------------------------------------------------------------------------------------------------


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against labels; {} selects everything."""
    if not selects(selector.get("matchLabels", {}), labels):
        return False
    for e in selector.get("matchExpressions", []):
        present, value = e["key"] in labels, labels.get(e["key"])
        if not {
            "In": present and value in e.get("values", []),
            "NotIn": not present or value not in e.get("values", []),
            "Exists": present,
            "DoesNotExist": not present,
        }[e["operator"]]:
            return False
    return True


def peer_admits(peer: dict[str, Any], source: dict[str, Any], namespace: str) -> bool:
    """Whether a NetworkPolicyPeer of a policy in `namespace` admits the source pod (labels, namespace, its
    namespace's labels, ip), as NetworkPolicy defines it."""
    if "ipBlock" in peer:
        ip = ipaddress.ip_address(source["ip"])
        block = peer["ipBlock"]
        return ip in ipaddress.ip_network(block["cidr"]) and not any(
            ip in ipaddress.ip_network(x) for x in block.get("except", [])
        )
    if "namespaceSelector" in peer:
        if not matches(peer["namespaceSelector"], source["namespace_labels"]):
            return False
    elif source["namespace"] != namespace:
        return False
    return matches(peer.get("podSelector", {}), source["labels"])


def admits(docs: list[dict[str, Any]], target: dict[str, str], source: dict[str, Any], port: int) -> bool:
    """Whether the NetworkPolicies let `source` reach the pod with labels `target` on TCP `port` (a pod no policy
    selects admits everything)."""
    policies = [p for p in c.find(docs, "NetworkPolicy") if matches(p["spec"]["podSelector"], target)]
    if not policies:
        return True
    for policy in policies:
        assert policy["spec"]["policyTypes"] == ["Ingress"], "egress is never restricted"
        for rule in policy["spec"].get("ingress", []):
            ports = rule.get("ports")
            if ports and not any(p["port"] == port and p.get("protocol", "TCP") == "TCP" for p in ports):
                continue
            peers = rule.get("from")
            if not peers or any(peer_admits(p, source, policy["metadata"]["namespace"]) for p in peers):
                return True
    return False


def pod(labels: dict[str, str], namespace: str = c.NAMESPACE, ip: str = "10.1.2.3") -> dict[str, Any]:
    return {
        "labels": labels,
        "namespace": namespace,
        "namespace_labels": {"kubernetes.io/metadata.name": namespace},
        "ip": ip,
    }


def release_pods(
    docs: list[dict[str, Any]], values: dict[str, Any] | None = None
) -> dict[str, dict[str, str]]:
    """The labels of each of the release's pods: the workloads', and a Spark job's driver and executors as the
    job template gives them (plus the labels Spark and the launcher add)."""
    out = {
        w["metadata"]["name"].removeprefix("provender-"): w["spec"]["template"]["metadata"]["labels"]
        for w in workloads(docs)
    }
    app = c.fill_job_template(c.job_template_text(values), **c.SAMPLE_JOB)["spec"]
    for role in ("driver", "executor"):
        out[f"spark-{role}"] = app[role]["labels"] | {"spark-role": role, "provender.dev/job-type": "stream"}
    return out


def test_network_policies_by_default_close_the_databases_and_spark_pods_to_others() -> None:
    """The default install: Postgres from Core only; Redis from Core, Serving and the Spark pods; Spark pods from
    each other; Core, Serving and every metrics port from anywhere (the default empty peer lists); nothing else
    on any other port. Each policy selects exactly its component's pods."""
    docs = c.manifests()
    pods = release_pods(docs)
    for policy in c.find(docs, "NetworkPolicy"):
        selected = {name for name, labels in pods.items() if matches(policy["spec"]["podSelector"], labels)}
        component = policy["metadata"]["name"].removeprefix("provender-")
        expected = {"spark-driver", "spark-executor"} if component == "spark" else {component}
        assert selected == expected, policy["metadata"]["name"]
    stranger = pod({"app": "something-else"})
    elsewhere = pod({"app": "something-else"}, namespace="other-team")
    ports = {"postgres": [5432], "redis": [6379], "core": [6565, 6568, 9090], "serving": [6566, 9090]}
    allowed = {
        "postgres": {"core"},
        "redis": {"core", "serving", "spark-driver", "spark-executor"},
        "core": set(pods) - {"core"},
        "serving": set(pods) - {"serving"},
    }
    for target, target_ports in ports.items():
        for port in target_ports:
            for source, labels in pods.items():
                if source != target:
                    assert admits(docs, pods[target], pod(labels), port) == (source in allowed[target]), (
                        source,
                        target,
                        port,
                    )
            open_to_all = target in ("core", "serving")
            assert admits(docs, pods[target], stranger, port) is open_to_all, (target, port)
            assert admits(docs, pods[target], elsewhere, port) is open_to_all, (target, port)
        assert not admits(docs, pods[target], stranger, 4040), target  # a port nobody serves
    # Driver and executors on Spark's (random) ports; the stream driver's metrics port to the scrapers.
    driver, executor = pods["spark-driver"], pods["spark-executor"]
    assert admits(docs, driver, pod(executor), 7078) and admits(docs, executor, pod(driver), 41234)
    assert not admits(docs, driver, pod(pods["core"]), 7078) and not admits(docs, driver, stranger, 7078)
    assert admits(docs, driver, elsewhere, 8090)


def test_network_policies_admit_the_named_peers_only() -> None:
    """networkPolicy.clients for Core (Serving always), servingClients for Serving, metricsFrom for every
    metrics port."""
    docs = c.manifests(NETWORK_PEERS)
    pods = release_pods(docs, NETWORK_PEERS)
    pipeline = pod({"app": "airflow"}, namespace="ml-pipelines", ip="10.9.0.1")
    model_server = pod({"app": "ranker"}, namespace="online-models", ip="10.9.0.2")
    prometheus = pod({"app.kubernetes.io/name": "prometheus"}, namespace="monitoring", ip="10.9.0.3")
    grafana = pod({"app.kubernetes.io/name": "grafana"}, namespace="monitoring", ip="10.9.0.4")
    laptop = pod({}, namespace="none", ip="10.20.1.7")
    blocked_laptop = pod({}, namespace="none", ip="10.20.99.7")
    stranger = pod({"app": "something-else"}, ip="10.9.0.5")
    core, serving, driver = pods["core"], pods["serving"], pods["spark-driver"]
    for port in (6565, 6568):
        assert admits(docs, core, pod(serving), port)
        assert admits(docs, core, pipeline, port) and admits(docs, core, laptop, port)
        assert not admits(docs, core, blocked_laptop, port)
        assert not admits(docs, core, model_server, port) and not admits(docs, core, stranger, port)
        assert not admits(docs, core, pod(pods["spark-driver"]), port)
    assert admits(docs, serving, model_server, 6566)
    assert not admits(docs, serving, pipeline, 6566) and not admits(docs, serving, stranger, 6566)
    for target, port in ((core, 9090), (serving, 9090), (driver, 8090)):
        assert admits(docs, target, prometheus, port)
        assert not admits(docs, target, grafana, port) and not admits(docs, target, stranger, port)
    # The ports in the policies are the containers' (and the stream metrics port Core gives the drivers).
    for name, policy_ports in (("core", {6565, 6568, 9090}), ("serving", {6566, 9090})):
        ctr = container(c.one(docs, "Deployment", f"provender-{name}"), name)
        assert {p["containerPort"] for p in ctr["ports"]} == policy_ports
        policy = c.one(docs, "NetworkPolicy", f"provender-{name}")
        assert {p["port"] for r in policy["spec"]["ingress"] for p in r["ports"]} == policy_ports
    assert (
        env_value(
            container(c.one(docs, "Deployment", "provender-core"), "core"), "PROVENDER_STREAM_METRICS_PORT"
        )
        == "8090"
    )


def test_network_policies_follow_the_deployment() -> None:
    """External databases: no policy for them. No stream metrics port: no metrics rule on the Spark pods.
    networkPolicy.enabled false: no policies. The standalone launcher: its Spark cluster reaches the driver in
    Core (any port) and Redis, and must be named."""
    names = {p["metadata"]["name"] for p in c.find(c.manifests(EXTERNAL), "NetworkPolicy")}
    assert names == {"provender-core", "provender-serving", "provender-spark"}
    spark = c.one(c.manifests({"core": {"streams": {"metricsPort": 0}}}), "NetworkPolicy", "provender-spark")
    assert [r.get("ports") for r in spark["spec"]["ingress"]] == [None]
    assert c.find(c.manifests({"networkPolicy": {"enabled": False}}), "NetworkPolicy") == []

    with pytest.raises(helm.HelmRenderError, match=re.escape("networkPolicy.sparkCluster")):
        c.manifests({"spark": {"launcher": "standalone"}})
    cluster = {"ipBlock": {"cidr": "192.168.50.0/24"}}
    values = {"spark": {"launcher": "standalone"}, "networkPolicy": {"sparkCluster": [cluster]}}
    docs = c.manifests(values)
    pods = release_pods(docs, values)
    worker = pod({}, namespace="none", ip="192.168.50.12")
    assert admits(docs, pods["core"], worker, 38211) and admits(docs, pods["redis"], worker, 6379)
    assert not admits(docs, pods["postgres"], worker, 5432)
    assert not admits(docs, pods["core"], pod({}, namespace="none", ip="192.168.51.1"), 38211)
    for policy in c.find(docs, "NetworkPolicy"):
        c.validate_builtin(policy)


# Metrics ---------------------------------------------------------------------------------------------------------


def test_prometheus_scrape_annotations_point_at_the_metrics_port() -> None:
    docs = c.manifests()
    for name in ("provender-core", "provender-serving"):
        deploy = c.one(docs, "Deployment", name)
        annotations = deploy["spec"]["template"]["metadata"]["annotations"]
        ports = {p["name"]: p["containerPort"] for p in pod_spec(deploy)["containers"][0]["ports"]}
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == ports["metrics"]
        assert annotations["prometheus.io/path"] == "/metrics"
    assert c.find(docs, "ServiceMonitor") == []


def test_service_monitor_selects_the_metrics_ports() -> None:
    docs = c.manifests(SERVICE_MONITOR)
    monitor = c.one(docs, "ServiceMonitor", "provender")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [c.NAMESPACE]}
    selector = monitor["spec"]["selector"]
    (expression,) = selector["matchExpressions"]
    selected = [
        s
        for s in c.find(docs, "Service")
        if selects(selector["matchLabels"], s["metadata"]["labels"])
        and s["metadata"]["labels"].get(expression["key"]) in expression["values"]
    ]
    assert {s["metadata"]["name"] for s in selected} == {"provender-core", "provender-serving"}
    (endpoint,) = monitor["spec"]["endpoints"]
    for svc in selected:
        assert endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]}
    assert endpoint["path"] == "/metrics" and re.fullmatch(r"\d+s", endpoint["interval"])


def test_observability_hooks_render_only_when_enabled() -> None:
    rendered = c.render()
    assert rendered["templates/dashboards/configmaps.yaml"].strip() == ""
    assert rendered["templates/prometheusrule.yaml"].strip() == ""
    docs = c.manifests(EVERYTHING)
    rule = c.one(docs, "PrometheusRule", "provender")
    chart_groups = yaml.safe_load((c.CHART / "rules" / "provender.yaml").read_text())
    assert rule["spec"]["groups"] == EVERYTHING["prometheusRule"]["groups"] + chart_groups
    dashboards = {
        d["metadata"]["name"]
        for d in c.find(docs, "ConfigMap")
        if d["metadata"]["labels"].get("grafana_dashboard") == "1"
    }
    assert dashboards == {f"provender-dashboard-{p.stem}" for p in (c.CHART / "dashboards").glob("*.json")}
    core = container(c.one(docs, "Deployment", "provender-core"), "core")
    assert env_value(core, "PROVENDER_PUSHGATEWAY_URL") == "http://pushgateway.monitoring:9091"
    assert "PROVENDER_PUSHGATEWAY_URL" not in env_of(
        container(c.one(c.manifests(), "Deployment", "provender-core"), "core")
    )


def test_names_fit_kubernetes_limits_for_the_longest_release_name() -> None:
    release = "r" * 53  # Helm's limit for a release name
    docs = c.manifests(SERVICE_MONITOR, release=release, namespace="team-a")
    for doc in docs:
        name = doc["metadata"]["name"]
        limit = 52 if doc["kind"] == "StatefulSet" else 63  # room for the pod ordinal and revision hash
        assert len(name) <= limit and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), (
            doc["kind"],
            name,
        )
        for key, value in doc["metadata"].get("labels", {}).items():
            assert len(value) <= 63, (doc["kind"], key, value)
    serving = container(c.one(docs, "Deployment", f"{release[:42]}-serving"), "serving")
    core_svc = c.one(docs, "Service", f"{release[:42]}-core")
    assert env_value(serving, "PROVENDER_CORE_URL") == service_address(core_svc, "grpc")
    app = c.fill_job_template(c.job_template_text(release=release, namespace="team-a"), **c.SAMPLE_JOB)
    assert app["metadata"]["namespace"] == "team-a"


def test_notes_tell_how_to_connect_the_sdk() -> None:
    notes = c.render()["templates/NOTES.txt"]
    assert 'core_url="provender-core.feast.svc:6565"' in notes
    assert 'serving_url="provender-serving.feast.svc:6566"' in notes
    assert "kubectl --namespace feast port-forward svc/provender-core 6565:6565 6568:6568" in notes
    assert "kubectl --namespace feast port-forward svc/provender-serving 6566:6566" in notes
    assert 'Client(core_url="localhost:6565", serving_url="localhost:6566"' in notes


def test_image_matches_what_the_chart_expects() -> None:
    dockerfile = (c.REPO / "deploy" / "docker" / "Dockerfile").read_text()
    values = c.chart().values
    uid = values["podSecurityContext"]["runAsUser"]
    gid = values["podSecurityContext"]["runAsGroup"]
    assert f"USER {uid}:{gid}" in dockerfile
    assert f"useradd --uid {uid} --gid {gid}" in dockerfile
    exposed = {int(p) for p in re.search(r"^EXPOSE (.+)$", dockerfile, re.M).group(1).split()}
    assert {values["core"]["port"], values["core"]["jobServicePort"], values["serving"]["port"]} <= exposed
    # The jobs' entry points live where the template's mainApplicationFile says.
    assert "/opt/provender/jobs" in dockerfile
    for job in ("ingestion", "retrieval"):
        assert (c.REPO / "services" / "jobs" / f"{job}.py").exists()
    assert 'ENTRYPOINT ["/opt/provender/entrypoint.sh"]' in dockerfile
    entrypoint = (c.REPO / "deploy" / "docker" / "entrypoint.sh").read_text()
    assert "driver)" in entrypoint and "executor)" in entrypoint
    assert "KubernetesExecutorBackend" in entrypoint
    assert yaml.safe_load((c.CHART / "Chart.yaml").read_text())["apiVersion"] == "v2"


# The operator's published CRDs, where a copy of the project's reference material sits beside the repository.
REFERENCE_K8S = c.REPO.parent / "shared" / "k8s"


@pytest.mark.skipif(
    not REFERENCE_K8S.is_dir(), reason="no reference copy of the operator's CRDs beside the repository"
)
def test_vendored_crds_equal_the_shared_reference() -> None:
    shared = {p.name: p.read_bytes() for p in REFERENCE_K8S.glob("*.yaml")}
    vendored = {p.name: p.read_bytes() for p in c.VENDORED_K8S.glob("*.yaml")}
    assert shared and vendored == shared
