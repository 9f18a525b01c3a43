"""The Kubernetes launcher (`--spark-launcher k8s`): one `sparkoperator.k8s.io/v1beta2` SparkApplication per
job, created from a template, run by the Spark operator.

- **Manifest.** The template (the chart mounts it; without one a built-in template is used) has three
  placeholders, `${name}`, `${main_application_file}` and `${arguments}`, each standing for a whole YAML value;
  each is replaced with the JSON encoding of its value and the document is then parsed. The launcher then sets
  the name and namespace, adds its labels (`provender.dev/job-id`, `job-type`, `project`, `table`) to the
  application, the driver and the executors, the same values unabridged as annotations, and merges `conf` into
  `spec.sparkConf`. Pod settings that the operator applies only through its webhook (security contexts,
  volumes, env from Secrets, ports) belong in the roles' pod templates (`spec.driver.template`,
  `spec.executor.template`), which spark-submit applies itself: the built-in template and the chart's do so.
- **Names.** The application is named after the job id when that is a DNS-1123 label of at most 50 characters
  (Core's ids are); otherwise a cleaned, shortened id plus a hash of it. The operator derives the driver pod
  (`<name>-driver`) and service names (`<name>-ui-svc`) from it, which must stay within 63 characters.
- **Idempotent.** Creating an existing name is a 409 AlreadyExists: the existing application is the launch.
- **Status.** `status.applicationState.state` maps to a JobStatus (`STATES`; a state this table does not know
  is PENDING, never an error); `errorMessage` becomes the error message. Statuses come from one LIST by label
  selector per namespace, cached for `cache_ttl_seconds`, not one GET per call.
- **Cancel** deletes the application (404: already gone); the operator then removes its pods.
- **Log** URI: `k8s://<namespace>/pods/<driver pod>/log`.
- **Stream jobs** run until cancelled. Their application differs from a batch job's in three ways: the job-type
  label is `stream`; the launcher sets `spec.restartPolicy` to STREAM_RESTART_POLICY (OnFailure, with retries and
  pauses: a failed driver is submitted again and resumes from the job's checkpoint), where a batch job keeps the
  template's (`Never` in the chart's and the built-in one); and the driver serves Prometheus /metrics on the job's
  `metrics_port`, so the driver pod gets `prometheus.io/scrape|port|path` annotations and a container port named
  `metrics` (in the driver's pod template when it has one). A RUNNING stream application is a RUNNING job for
  as long as it runs: nothing here times a job out.

The handle is JSON naming the namespace, the application and the job, so a new launcher object (Core restarted)
answers for jobs an earlier one started. Domain code: no gRPC.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from provender.core.launchers.base import JobStatus, Launched, Launcher, register_launcher
from provender.core.launchers.settings import K8sSettings
from provender.kernel.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    ProvenderError,
    Unauthenticated,
    Unavailable,
)
from provender.kernel.jobs.args import (
    REDIS_URL_ENV,
    IngestionJobArgs,
    JobArgs,
    RetrievalJobArgs,
    StreamIngestionJobArgs,
    application_path,
)
from provender.kernel.jobs.conf import JOB_ID_CONF
from provender.kernel.jobs.status import CANCELLED
from provender.kernel.redis_url import has_credentials

log = logging.getLogger(__name__)

GROUP = "sparkoperator.k8s.io"
VERSION = "v1beta2"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "SparkApplication"
PLURAL = "sparkapplications"

JOB_ID_LABEL = "provender.dev/job-id"
JOB_TYPE_LABEL = "provender.dev/job-type"
PROJECT_LABEL = "provender.dev/project"
TABLE_LABEL = "provender.dev/table"

# The operator names the driver pod `<name>-driver`, the UI service `<name>-ui-svc` and the UI ingress
# `<name>-ui-ingress` (DNS-1035 labels, at most 63 characters); 50 leaves room for all of them.
MAX_NAME_LENGTH = 50
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
PLACEHOLDERS = ("name", "main_application_file", "arguments")
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
CANCELLED_MESSAGE = CANCELLED

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_JOB_TYPES = {
    IngestionJobArgs.KIND: "ingestion",
    RetrievalJobArgs.KIND: "retrieval",
    StreamIngestionJobArgs.KIND: "stream",
}

# A stream job's restart policy (the operator's RestartPolicy; a batch job keeps the template's). When the driver
# fails, the operator submits the application again after onFailureRetryInterval times the submissions so far (a
# linear backoff: 30 s, 60 s, 90 s, ...), and the new driver resumes from the job's checkpoint. The operator counts
# failures over the application's whole life (its status.executionAttempts is reset only by a spec change), so
# the 11th failure of a stream is final: the application is FAILED and the job ERROR, and starting the table's
# stream again makes a new attempt. A refused submission (quota, webhook) is retried the same way, 5 times.
STREAM_RESTART_POLICY: dict[str, Any] = {
    "type": "OnFailure",
    "onFailureRetries": 10,
    "onFailureRetryInterval": 30,
    "onSubmissionFailureRetries": 5,
    "onSubmissionFailureRetryInterval": 60,
}
# The containers spark-submit takes from a role's pod template (the operator names them so when it passes
# spec.driver.template / spec.executor.template on): pod settings that the operator's typed fields would need its
# mutating webhook for (security contexts, volumes, env from Secrets, ports) go there, so jobs run the same whether
# the webhook is on or off.
DRIVER_CONTAINER = "spark-kubernetes-driver"
EXECUTOR_CONTAINER = "spark-kubernetes-executor"
METRICS_PORT_NAME = "metrics"  # the stream driver's container port for Prometheus (a PodMonitor selects it)
METRICS_PATH = "/metrics"

# Every state of the operator's ApplicationStateType (api/v1beta2), and what it means for a job.
STATES: dict[str, JobStatus] = {
    "": JobStatus.PENDING,  # new: the operator has not looked at it yet
    "NEW": JobStatus.PENDING,
    "SUBMITTED": JobStatus.PENDING,  # spark-submit ran; the driver pod is being scheduled
    "PENDING_RERUN": JobStatus.PENDING,  # a retry (restartPolicy) or an update is about to resubmit
    "INVALIDATING": JobStatus.PENDING,  # the spec changed; the operator stops the run to start it again
    "SUSPENDING": JobStatus.PENDING,  # spec.suspend was set: stopping, will run again when resumed
    "SUSPENDED": JobStatus.PENDING,
    "RESUMING": JobStatus.PENDING,
    "RUNNING": JobStatus.RUNNING,
    "SUCCEEDING": JobStatus.RUNNING,  # the driver ended well; the operator is finishing (or rerunning)
    "FAILING": JobStatus.RUNNING,  # the driver failed; the operator retries or moves on to FAILED
    "UNKNOWN": JobStatus.RUNNING,  # the driver pod's state cannot be seen (node lost): still under way
    "COMPLETED": JobStatus.DONE,
    "FAILED": JobStatus.ERROR,
    "SUBMISSION_FAILED": JobStatus.ERROR,  # unless the restart policy retries it: see application_state
}
UNRECOGNISED_STATE = JobStatus.PENDING


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def application_name(job_id: str) -> str:
    """The SparkApplication's name for a job id: the id itself when it is a DNS-1123 label of at most
    MAX_NAME_LENGTH characters, else a cleaned, shortened id and a hash of the whole id."""
    if not job_id:
        raise InvalidArgument("job_id", job_id, "a non-empty job id")
    if len(job_id) <= MAX_NAME_LENGTH and _DNS_LABEL.match(job_id):
        return job_id
    digest = _digest(job_id, 12)
    base = re.sub(r"[^a-z0-9]+", "-", job_id.lower())
    base = re.sub(r"^[^a-z]+", "", base)[: MAX_NAME_LENGTH - len(digest) - 1].strip("-")
    return f"{base or 'job'}-{digest}"


def label_value(value: str) -> str:
    """`value` when Kubernetes accepts it as a label value, else `sha256-` and 40 hex digits of its hash (select
    by the same function; the annotation of the same key holds the value itself)."""
    if len(value) <= 63 and _LABEL_VALUE.match(value):
        return value
    return f"sha256-{_digest(value, 40)}"


def job_identity(job_id: str, args: JobArgs) -> dict[str, str]:
    """The unabridged values of the launcher's four labels (annotations carry these; labels their label_value)."""
    if isinstance(args, RetrievalJobArgs):
        table = ",".join(sorted(t.table.name for t in args.tables))
    else:
        table = args.table.name
    return {
        JOB_ID_LABEL: job_id,
        JOB_TYPE_LABEL: _JOB_TYPES[args.KIND],
        PROJECT_LABEL: args.project,
        TABLE_LABEL: table,
    }


def job_labels(job_id: str, args: JobArgs) -> dict[str, str]:
    labels = {k: label_value(v) for k, v in job_identity(job_id, args).items()}
    # Several tables of a retrieval: joined by dots (allowed in label values), hashed when too long.
    labels[TABLE_LABEL] = label_value(job_identity(job_id, args)[TABLE_LABEL].replace(",", "."))
    return labels


def _will_resubmit(app: dict[str, Any]) -> bool:
    """Whether the operator retries a SUBMISSION_FAILED application (its util.ShouldRetry)."""
    policy = (app.get("spec") or {}).get("restartPolicy") or {}
    kind = policy.get("type", "Never")
    if kind == "Always":
        return True
    if kind == "OnFailure":
        retries = policy.get("onSubmissionFailureRetries")
        attempts = (app.get("status") or {}).get("submissionAttempts", 0) or 0
        return retries is not None and attempts <= retries
    return False


def application_state(app: dict[str, Any]) -> tuple[JobStatus, str]:
    """The job state of a SparkApplication as the operator reports it, and the error message when ERROR."""
    status = app.get("status") or {}
    app_state = status.get("applicationState") or {}
    state = str(app_state.get("state") or "")
    message = str(app_state.get("errorMessage") or "")
    job_state = STATES.get(state.upper(), UNRECOGNISED_STATE)
    if state.upper() == "SUBMISSION_FAILED" and _will_resubmit(app):
        job_state = JobStatus.PENDING
    if job_state is not JobStatus.ERROR:
        return job_state, ""
    meta = app.get("metadata") or {}
    where = f"SparkApplication {meta.get('namespace', '')}/{meta.get('name', '')}"
    if message:
        return job_state, f"{where} {state}: {message}"
    return job_state, f"{where} {state} without an error message; see the driver's log"


def driver_pod(app: dict[str, Any]) -> str:
    """The driver pod's name: as the operator reports it, else the name it gives (`<name>-driver`)."""
    pod = ((app.get("status") or {}).get("driverInfo") or {}).get("podName")
    if pod:
        return str(pod)
    spec_pod = ((app.get("spec") or {}).get("driver") or {}).get("podName")
    return str(spec_pod or f"{(app.get('metadata') or {}).get('name', '')}-driver")


def pod_log_uri(namespace: str, pod: str) -> str:
    return f"k8s://{namespace}/pods/{pod}/log"


@dataclass(frozen=True)
class K8sHandle:
    launcher: str
    namespace: str
    name: str
    job_id: str

    def encode(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def decode(cls, handle: str) -> K8sHandle:
        try:
            parsed = cls(**json.loads(handle))
        except (json.JSONDecodeError, TypeError):
            raise InvalidArgument("launcher handle", handle, "a handle made by the k8s launcher") from None
        if parsed.launcher != K8sLauncher.name or not parsed.namespace or not parsed.name:
            raise InvalidArgument("launcher handle", handle, "a handle made by the k8s launcher")
        return parsed


@dataclass(frozen=True)
class K8sJob:
    """A job found by listing the namespace's SparkApplications."""

    job_id: str
    handle: str
    job_type: str
    project: str
    table: str
    state: JobStatus
    error_message: str
    operator_state: str
    log_uri: str


def _package_version(name: str, default: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return default


def default_template(image: str, service_account: str, spark_version: str, image_pull_policy: str) -> str:
    """The template used when none is given: the chart's shape (non-root, read-only root filesystem, /tmp an
    emptyDir, set in the roles' pod templates), one small driver and executor."""
    q = json.dumps

    def role(container: str) -> str:
        return (
            f"    serviceAccount: {q(service_account)}\n"
            "    template:\n"
            "      spec:\n"
            "        securityContext: {runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, "
            "seccompProfile: {type: RuntimeDefault}}\n"
            "        volumes: [{name: tmp, emptyDir: {}}]\n"
            "        containers:\n"
            f"          - name: {container}\n"
            "            securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, "
            "capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}\n"
            '            env: [{name: HOME, value: "/tmp"}]\n'
            "            volumeMounts: [{name: tmp, mountPath: /tmp}]"
        )

    return f"""\
# The k8s launcher's built-in SparkApplication template (used when no job_template is given).
apiVersion: {API_VERSION}
kind: {KIND}
metadata:
  name: ${{name}}
spec:
  type: Python
  pythonVersion: "3"
  mode: cluster
  sparkVersion: {q(spark_version)}
  image: {q(image)}
  imagePullPolicy: {q(image_pull_policy)}
  mainApplicationFile: ${{main_application_file}}
  arguments: ${{arguments}}
  sparkConf: {{}}
  restartPolicy:
    type: Never
  timeToLiveSeconds: 86400
  driver:
    cores: 1
    memory: "1g"
{role(DRIVER_CONTAINER)}
  executor:
    instances: 1
    cores: 1
    memory: "1g"
{role(EXECUTOR_CONTAINER)}
"""


def role_container(spec: dict[str, Any], role: str) -> dict[str, Any] | None:
    """The Spark container of the role's pod template (spec.<role>.template), when the template has one."""
    name = DRIVER_CONTAINER if role == "driver" else EXECUTOR_CONTAINER
    template = (spec.get(role) or {}).get("template") or {}
    containers = (template.get("spec") or {}).get("containers") or []
    found = [c for c in containers if isinstance(c, dict) and c.get("name") == name]
    return found[0] if found else None


def _check_redis_credentials(sample: dict[str, Any], redis_url: str) -> None:
    """A Redis with a password: the template must give the driver REDIS_URL_ENV (from the Secret that holds Core's
    URL, as the chart's does); the launcher never writes the password into a SparkApplication."""
    if not redis_url or not has_credentials(redis_url):
        return
    spec = sample.get("spec", {})
    env = list((spec.get("driver") or {}).get("env") or [])
    env += (role_container(spec, "driver") or {}).get("env") or []
    if not any(isinstance(e, dict) and e.get("name") == REDIS_URL_ENV for e in env):
        raise InvalidArgument(
            "job_template",
            f"no {REDIS_URL_ENV} in the driver's env",
            f"an env entry {REDIS_URL_ENV} for the driver (in spec.driver.template's {DRIVER_CONTAINER} "
            "container, or spec.driver.env), from the Secret that holds the Redis URL (valueFrom.secretKeyRef): "
            "Core's Redis has a password, which jobs take from there, never from their arguments",
        )


def fill_template(template: str, values: dict[str, Any]) -> dict[str, Any]:
    """Replace each ${placeholder} with the JSON encoding of its value, and parse the YAML document."""
    unknown = sorted(set(PLACEHOLDER.findall(template)) - set(values))
    if unknown:
        raise InvalidArgument("job_template", unknown, f"only the placeholders {', '.join(PLACEHOLDERS)}")
    text = PLACEHOLDER.sub(lambda m: json.dumps(values[m.group(1)]), template)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InvalidArgument("job_template", str(e).splitlines()[0], "a YAML document") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("job_template", type(doc).__name__, "a YAML mapping (a SparkApplication)")
    return doc


def _mapping(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"job_template {where}", value, "a mapping")
    return value


def _api_message(e: ApiException) -> str:
    try:
        return str(json.loads(e.body or "")["message"])
    except (ValueError, KeyError, TypeError):
        return f"{e.status} {e.reason}".strip()


@register_launcher
class K8sLauncher(Launcher):
    name = "k8s"

    Settings = K8sSettings
    runtime_options = ("api_client",)

    def __init__(self, settings: K8sSettings, *, api_client: k8s.ApiClient | None = None) -> None:
        """`api_client` as given, else one configured as `settings` say."""
        self.settings = settings
        api_client = api_client or self._connect(
            settings.kubeconfig or None, settings.context or None, settings.in_cluster
        )
        self.api_client = api_client
        self.api = k8s.CustomObjectsApi(self.api_client)
        if settings.job_template:
            path = Path(settings.job_template)
            try:
                self.template = path.read_text()
            except OSError as e:
                raise InvalidArgument("job_template", str(path), f"a readable template file ({e})") from None
        else:
            self.template = default_template(
                settings.image or f"provender/provender:{_package_version('provender', 'latest')}",
                settings.service_account,
                settings.spark_version or _package_version("pyspark", "4.0.0"),
                settings.image_pull_policy,
            )
        self.application_dir = settings.application_dir.rstrip("/")
        sample = self._parse_template("template-check", [""], f"{self.application_dir}/ingestion.py")
        self.namespace = settings.namespace or self._default_namespace(sample)
        if sample["metadata"].get("namespace") not in (None, self.namespace):
            log.warning(
                "the job template's namespace is replaced by the launcher's",
                extra={"template_namespace": sample["metadata"]["namespace"], "namespace": self.namespace},
            )
        _check_redis_credentials(sample, settings.redis_url)
        self.conf = dict(settings.conf)
        self.cache_ttl_seconds = settings.cache_ttl_seconds
        self.timeout = settings.request_timeout_seconds
        self.page_size = settings.list_page_size
        self._lock = threading.Lock()  # guards the caches; held through a LIST so concurrent callers share it
        self._listed: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}
        self._cancelled: set[tuple[str, str]] = set()
        self._warned_states: set[str] = set()

    # --- configuration ---

    @staticmethod
    def _connect(
        kubeconfig: str | Path | None, context: str | None, in_cluster: bool | None
    ) -> k8s.ApiClient:
        configuration = k8s.Configuration()
        if in_cluster is None:
            in_cluster = kubeconfig is None and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        try:
            if in_cluster:
                k8s_config.load_incluster_config(client_configuration=configuration)
            else:
                k8s_config.load_kube_config(
                    config_file=str(kubeconfig) if kubeconfig else None,
                    context=context,
                    client_configuration=configuration,
                )
        except (k8s_config.ConfigException, OSError, TypeError) as e:
            where = (
                "the pod's service account" if in_cluster else f"kubeconfig {kubeconfig or '~/.kube/config'}"
            )
            raise FailedPrecondition(
                f"the k8s launcher cannot configure the Kubernetes API client from {where}: {e}"
            ) from None
        return k8s.ApiClient(configuration)

    def _parse_template(self, name: str, arguments: list[str], main_file: str) -> dict[str, Any]:
        doc = fill_template(
            self.template, {"name": name, "main_application_file": main_file, "arguments": arguments}
        )
        if doc.get("apiVersion") != API_VERSION or doc.get("kind") != KIND:
            raise InvalidArgument(
                "job_template", f"{doc.get('apiVersion')} {doc.get('kind')}", f"a {API_VERSION} {KIND}"
            )
        _mapping(doc, "metadata", "metadata")
        spec = _mapping(doc, "spec", "spec")
        for key in ("driver", "executor", "sparkConf"):
            _mapping(spec, key, f"spec.{key}")
        return doc

    @staticmethod
    def _default_namespace(sample: dict[str, Any]) -> str:
        if sample["metadata"].get("namespace"):
            return str(sample["metadata"]["namespace"])
        with contextlib.suppress(OSError):
            return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
        return "default"

    # --- manifests ---

    def main_application_file(self, args: JobArgs) -> str:
        return f"{self.application_dir}/{application_path(args).name}"

    def manifest(self, job_id: str, args: JobArgs) -> dict[str, Any]:
        """The SparkApplication for job `job_id` (what submit creates)."""
        name = application_name(job_id)
        arguments = [args.to_json()]
        main_file = self.main_application_file(args)
        app = self._parse_template(name, arguments, main_file)
        meta = app["metadata"]
        meta["name"] = name
        meta["namespace"] = self.namespace
        labels = job_labels(job_id, args)
        _mapping(meta, "labels", "metadata.labels").update(labels)
        _mapping(meta, "annotations", "metadata.annotations").update(job_identity(job_id, args))
        spec = app["spec"]
        # The launcher's values win over a template that hard-codes them.
        spec["mainApplicationFile"] = main_file
        spec["arguments"] = arguments
        # spark.provender.job_id: the id the job's pushed metrics carry (as with the local launchers).
        spec["sparkConf"] = (
            {str(k): str(v) for k, v in spec["sparkConf"].items()} | self.conf | {JOB_ID_CONF: job_id}
        )
        for role in ("driver", "executor"):
            _mapping(spec[role], "labels", f"spec.{role}.labels").update(labels)
        if self.settings.jars:
            deps = _mapping(spec, "deps", "spec.deps")
            deps["jars"] = [*(deps.get("jars") or []), *self.settings.jars]
        if isinstance(args, StreamIngestionJobArgs):
            self._stream_spec(job_id, spec, args)
        return app

    @staticmethod
    def _stream_spec(job_id: str, spec: dict[str, Any], args: StreamIngestionJobArgs) -> None:
        """What a stream job's application has beyond a batch job's: its restart policy, and its driver's
        /metrics announced for scraping (pod annotations, a named container port)."""
        spec["restartPolicy"] = dict(STREAM_RESTART_POLICY)
        if not args.metrics_port:
            # The job takes a free port and prints it in its log: nothing can say where to scrape.
            log.warning(
                "stream job without a metrics port: its driver's /metrics cannot be scraped "
                "(set Core's --stream-metrics-port)",
                extra={"job_id": job_id},
            )
            return
        driver = spec["driver"]
        _mapping(driver, "annotations", "spec.driver.annotations").update(
            {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(args.metrics_port),
                "prometheus.io/path": METRICS_PATH,
            }
        )
        # In the driver's pod template when it has one (spark-submit applies it), else the operator's field.
        container = role_container(spec, "driver")
        holder, where = (
            (container, "spec.driver.template") if container is not None else (driver, "spec.driver")
        )
        ports = holder.get("ports") or []
        if not isinstance(ports, list):
            raise InvalidArgument(f"job_template {where} ports", ports, "a list of ports")
        # The template's own port of that name or number gives way to the job's.
        ports = [
            p
            for p in ports
            if not isinstance(p, dict)
            or (p.get("name") != METRICS_PORT_NAME and p.get("containerPort") != args.metrics_port)
        ]
        ports.append({"name": METRICS_PORT_NAME, "containerPort": args.metrics_port, "protocol": "TCP"})
        holder["ports"] = ports

    # --- Launcher ---

    def submit(self, job_id: str, args: JobArgs) -> Launched:
        app = self.manifest(job_id, args)
        name = app["metadata"]["name"]
        handle = K8sHandle(self.name, self.namespace, name, job_id)
        created = None
        for _ in range(3):  # a 409 whose object is deleted before we read it: create again
            created = self._create(app)
            if created is None:
                created = self._get(self.namespace, name)
                if created is None:
                    continue
                found = ((created.get("metadata") or {}).get("annotations") or {}).get(JOB_ID_LABEL)
                if found != job_id:
                    raise FailedPrecondition(
                        f"SparkApplication {self.namespace}/{name} already exists for job {found!r}, not {job_id!r}"
                    )
                log.info("job already launched", extra={"job_id": job_id, "application": name})
            break
        if created is None:
            raise Unavailable(f"SparkApplication {self.namespace}/{name} keeps being deleted while submitted")
        self._remember(self.namespace, created)
        return Launched(handle.encode(), pod_log_uri(self.namespace, driver_pod(created)))

    def _create(self, app: dict[str, Any]) -> dict[str, Any] | None:
        """The created application, or None when one of that name exists (409 AlreadyExists)."""
        name = app["metadata"]["name"]
        try:
            return self.api.create_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                app,
                field_validation="Strict",
                _request_timeout=self.timeout,
            )
        except ApiException as e:
            if e.status == 409:
                return None
            raise self._error(e, f"creating SparkApplication {self.namespace}/{name}") from None
        except (HTTPError, OSError) as e:
            raise self._unreachable(e) from None

    def status(self, handle: str) -> tuple[JobStatus, str]:
        h = K8sHandle.decode(handle)
        app = self._find(h.namespace, h.name)
        if app is None:
            if (h.namespace, h.name) in self._cancelled:
                return JobStatus.ERROR, CANCELLED_MESSAGE
            return JobStatus.ERROR, (
                f"SparkApplication {h.namespace}/{h.name} no longer exists (deleted, or removed by the operator "
                "after its timeToLiveSeconds) and its outcome was not seen"
            )
        state = str(((app.get("status") or {}).get("applicationState") or {}).get("state") or "")
        if state.upper() not in STATES and state not in self._warned_states:
            self._warned_states.add(state)
            log.warning(
                "unrecognised SparkApplication state, taken as PENDING",
                extra={"state": state, "application": h.name},
            )
        return application_state(app)

    def cancel(self, handle: str) -> None:
        h = K8sHandle.decode(handle)
        app = self._get(h.namespace, h.name)
        if app is None:
            return
        if application_state(app)[0].terminal:
            self._remember(h.namespace, app)
            return
        try:
            self.api.delete_namespaced_custom_object(
                GROUP,
                VERSION,
                h.namespace,
                PLURAL,
                h.name,
                propagation_policy="Background",
                _request_timeout=self.timeout,
            )
        except ApiException as e:
            if e.status != 404:
                raise self._error(e, f"deleting SparkApplication {h.namespace}/{h.name}") from None
        except (HTTPError, OSError) as e:
            raise self._unreachable(e) from None
        self._cancelled.add((h.namespace, h.name))
        self._forget(h.namespace, h.name)

    def log_uri(self, handle: str) -> str:
        h = K8sHandle.decode(handle)
        app = self._find(h.namespace, h.name) or {"metadata": {"name": h.name}}
        return pod_log_uri(h.namespace, driver_pod(app))

    # --- listing ---

    def list_jobs(
        self,
        project: str | None = None,
        table: str | None = None,
        job_type: str | None = None,
        namespace: str | None = None,
    ) -> list[K8sJob]:
        """The jobs whose applications are in the namespace (this launcher's by default), selected by label."""
        namespace = namespace or self.namespace
        selector = [JOB_ID_LABEL]
        for key, value in ((PROJECT_LABEL, project), (TABLE_LABEL, table), (JOB_TYPE_LABEL, job_type)):
            if value:
                selector.append(f"{key}={label_value(value)}")
        out = []
        for app in self._list(namespace, ",".join(selector)):
            meta = app.get("metadata") or {}
            notes = meta.get("annotations") or {}
            labels = meta.get("labels") or {}
            job_id = notes.get(JOB_ID_LABEL) or labels.get(JOB_ID_LABEL, "")
            state, message = application_state(app)
            out.append(
                K8sJob(
                    job_id=job_id,
                    handle=K8sHandle(self.name, namespace, meta.get("name", ""), job_id).encode(),
                    job_type=notes.get(JOB_TYPE_LABEL) or labels.get(JOB_TYPE_LABEL, ""),
                    project=notes.get(PROJECT_LABEL) or labels.get(PROJECT_LABEL, ""),
                    table=notes.get(TABLE_LABEL) or labels.get(TABLE_LABEL, ""),
                    state=state,
                    error_message=message,
                    operator_state=str(
                        ((app.get("status") or {}).get("applicationState") or {}).get("state", "")
                    ),
                    log_uri=pod_log_uri(namespace, driver_pod(app)),
                )
            )
        return sorted(out, key=lambda j: j.job_id)

    def refresh(self) -> None:
        """Forget the cached statuses: the next status call lists again."""
        with self._lock:
            self._listed.clear()

    # --- the API, through a cache ---

    def _list(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        try:
            while True:
                page = self.api.list_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    PLURAL,
                    label_selector=selector,
                    limit=self.page_size,
                    _continue=token,
                    _request_timeout=self.timeout,
                )
                items.extend(page.get("items") or [])
                token = (page.get("metadata") or {}).get("continue") or None
                if not token:
                    return items
        except ApiException as e:
            raise self._error(e, f"listing SparkApplications in {namespace}") from None
        except (HTTPError, OSError) as e:
            raise self._unreachable(e) from None

    def _find(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The application as of at most cache_ttl_seconds ago (one LIST serves every job of the namespace); a
        name the list does not have is asked for directly (created since, by another Core)."""
        now = time.monotonic()
        with self._lock:
            fetched_at, apps = self._listed.get(namespace, (float("-inf"), {}))
            if now - fetched_at >= self.cache_ttl_seconds:
                apps = {a["metadata"]["name"]: a for a in self._list(namespace, JOB_ID_LABEL)}
                self._listed[namespace] = (time.monotonic(), apps)
            app = apps.get(name)
        if app is not None:
            return app
        app = self._get(namespace, name)
        if app is not None:
            self._remember(namespace, app)
        return app

    def _get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.api.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _request_timeout=self.timeout
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise self._error(e, f"reading SparkApplication {namespace}/{name}") from None
        except (HTTPError, OSError) as e:
            raise self._unreachable(e) from None

    def _remember(self, namespace: str, app: dict[str, Any]) -> None:
        with self._lock:
            if namespace in self._listed:
                self._listed[namespace][1][app["metadata"]["name"]] = app

    def _forget(self, namespace: str, name: str) -> None:
        with self._lock:
            if namespace in self._listed:
                self._listed[namespace][1].pop(name, None)

    # --- errors ---

    def _error(self, e: ApiException, action: str) -> ProvenderError:
        message = f"{action}: {_api_message(e)}"
        if e.status == 401:
            return Unauthenticated(f"the Kubernetes API refused Core's credentials when {message}")
        if e.status == 403:
            return PermissionDenied(
                f"Core's service account may not do this (RBAC on {PLURAL}.{GROUP}) when {message}"
            )
        if e.status == 404:
            return FailedPrecondition(
                f"{message} (is the Spark operator's SparkApplication CRD installed, and the namespace there?)"
            )
        if e.status in (400, 422):
            return FailedPrecondition(
                f"the Kubernetes API rejected the job's SparkApplication when {message}"
            )
        return Unavailable(f"the Kubernetes API failed when {message}")

    def _unreachable(self, e: Exception) -> Unavailable:
        return Unavailable(f"the Kubernetes API at {self.api_client.configuration.host} is unreachable: {e}")
