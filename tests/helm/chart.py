"""Offline tooling for the Helm chart tests: render with Helm's own engine, parse, validate.

- Rendering and lint use the Helm v4 Go engine through the `helm-python-sdk` wheel (no helm binary, no cluster,
  no network). `lookup` returns nothing offline, so the Postgres password is always freshly generated here.
- Built-in kinds are validated with `kubernetes-validate`'s strict schemas (unknown fields are errors) for
  KUBE_VERSION.
- The SparkApplication job template is validated against the openAPIV3Schema of the Spark operator's CRD in
  tests/helm/crds/, made strict the way the API server's strict field validation treats it.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "provender"
# The Spark operator's CRDs (SparkApplication, ScheduledSparkApplication), as the operator publishes them.
VENDORED_K8S = Path(__file__).resolve().parent / "crds"
CRD_DIR = VENDORED_K8S
SPARKAPP_CRD = CRD_DIR / "sparkapplications.sparkoperator.k8s.io.yaml"

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion >=1.27) is below what the wheel ships schemas
# for; 1.30 is the oldest version still supported upstream with native gRPC probes GA.
KUBE_VERSION = "1.30"
RELEASE = "provender"
NAMESPACE = "feast"

# Kinds from CRDs: validated separately (the SparkApplication against its CRD; the rest structurally).
CRD_KINDS = {
    "monitoring.coreos.com/v1": {"ServiceMonitor", "PrometheusRule"},
    "sparkoperator.k8s.io/v1beta2": {"SparkApplication", "ScheduledSparkApplication"},
    "cert-manager.io/v1": {"Certificate"},
}

PLACEHOLDER = re.compile(r"\$\{([a-z_]+)\}")

# libyaml's loader when PyYAML has it (about ten times faster on the 800 KB CRD), else the pure-Python one.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def render(
    values: dict[str, Any] | None = None, *, release: str = RELEASE, namespace: str = NAMESPACE
) -> dict[str, str]:
    """Template path (relative to the chart) -> rendered text, as `helm install --dry-run` would render it."""
    out = _render_cached(json.dumps(values or {}, sort_keys=True), release, namespace)
    return dict(out)


@functools.cache
def _render_cached(values_json: str, release: str, namespace: str) -> tuple[tuple[str, str], ...]:
    rendered = chart().render(json.loads(values_json), name=release, namespace=namespace, is_install=True)
    prefix = f"{chart().name}/"
    return tuple(sorted((path.removeprefix(prefix), text) for path, text in rendered.items()))


def manifests(values: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """Every Kubernetes object the chart renders (NOTES.txt and empty documents left out); a fresh copy."""
    rendered = render(values, **kwargs)
    return copy.deepcopy(_parse(tuple(sorted(rendered.items()))))


@functools.cache
def _parse(rendered: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path, text in rendered:
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.load_all(text, Loader=_Loader):
            if doc:
                assert isinstance(doc, dict), f"{path}: a document that is not a mapping"
                doc.setdefault("__template__", path)
                docs.append(doc)
    return docs


def strip(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "__template__"}


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, (
        f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    )
    return found[0]


def lint(values: dict[str, Any] | None = None) -> dict[str, Any]:
    return helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}.0")


# Kubernetes built-in kinds ----------------------------------------------------------------------------------------


def is_crd_kind(doc: dict[str, Any]) -> bool:
    return doc["kind"] in CRD_KINDS.get(doc["apiVersion"], set())


def validate_builtin(doc: dict[str, Any]) -> str:
    """kubernetes-validate in strict mode (unknown fields are errors); raises its ValidationError (a
    jsonschema.ValidationError) or SchemaNotFoundError. Returns the schema version used."""
    return kubernetes_validate.validate(strip(doc), KUBE_VERSION, strict=True)


# The SparkApplication job template ----------------------------------------------------------------------------------


def _strict(node: Any) -> Any:
    """A copy of a CRD schema where objects with declared properties accept no others (what the API server's
    strict field validation enforces), except where the CRD preserves unknown fields."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def sparkapplication_validator() -> jsonschema.Draft7Validator:
    assert SPARKAPP_CRD.exists(), f"the Spark operator's CRD is expected at {SPARKAPP_CRD} (tests/helm/crds)"
    crd = yaml.load(SPARKAPP_CRD.read_text(), Loader=_Loader)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta2"]
    schema = _strict(version["schema"]["openAPIV3Schema"])
    return jsonschema.Draft7Validator(schema)


def fill_job_template(template: str, **values: Any) -> dict[str, Any]:
    """Fill the template's ${placeholders} as the launcher does (each with the JSON encoding of its value), and
    parse it."""
    missing = set(PLACEHOLDER.findall(template)) - set(values)
    assert not missing, f"no sample value for placeholders {sorted(missing)}"
    text = PLACEHOLDER.sub(lambda m: json.dumps(values[m.group(1)]), template)
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict)
    return doc


def job_template_text(values: dict[str, Any] | None = None, **kwargs: Any) -> str:
    docs = manifests(values, **kwargs)
    (configmap,) = [
        d for d in find(docs, "ConfigMap") if d["metadata"]["name"].endswith("-spark-job-template")
    ]
    return configmap["data"]["job-template.yaml"]


SAMPLE_JOB = {
    "name": "ingestion-0f3a9c2b7d",
    "main_application_file": "local:///opt/provender/jobs/ingestion.py",
    # A JSON argument with everything YAML could trip on: quotes, colons, braces, #, a newline, unicode.
    "arguments": [
        json.dumps(
            {
                "project": "default",
                "table": {"name": "driver_stats", "features": [{"name": "conv_rate", "type": "FLOAT"}]},
                "source": "s3://bucket/path/data.parquet",
                "note": 'a "quoted": {value} # not a comment\nsecond line ü',
            }
        )
    ],
}
