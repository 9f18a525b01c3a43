#!/bin/bash
# The image's entrypoint. Spark on Kubernetes starts the driver pod with `driver <spark-submit args>` and the
# executor pods with `executor` (configured through SPARK_* environment variables); this follows the contract of
# Spark's own image entrypoint (kubernetes/dockerfiles/spark/entrypoint.sh). Any other command (`provender core`,
# `provender serving`, a shell) runs as given. Everything runs under tini. Writes nothing to the filesystem, so
# it works with a read-only root filesystem.
set -euo pipefail

# Spark (through Hadoop) looks the user up by uid: an arbitrary uid without a passwd entry gets a name from here.
export SPARK_USER_NAME="${SPARK_USER_NAME:-provender}"

SPARK_HOME="${SPARK_HOME:-/opt/venv/lib/python3.11/site-packages/pyspark}"
SPARK_CLASSPATH="${SPARK_CLASSPATH:+${SPARK_CLASSPATH}:}${SPARK_HOME}/jars/*"
if [ -n "${SPARK_EXTRA_CLASSPATH:-}" ]; then
  SPARK_CLASSPATH="${SPARK_CLASSPATH}:${SPARK_EXTRA_CLASSPATH}"
fi
if [ -n "${HADOOP_CONF_DIR:-}" ]; then
  SPARK_CLASSPATH="${HADOOP_CONF_DIR}:${SPARK_CLASSPATH}"
fi
SPARK_CLASSPATH="${SPARK_CONF_DIR:-${SPARK_HOME}/conf}:${SPARK_CLASSPATH}"

case "${1:-}" in
  driver)
    shift
    CMD=(
      "${SPARK_HOME}/bin/spark-submit"
      --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS}"
      --deploy-mode client
      "$@"
    )
    ;;
  executor)
    shift
    # The executor's JVM options arrive as SPARK_JAVA_OPT_0, SPARK_JAVA_OPT_1, ... in that order.
    SPARK_EXECUTOR_JAVA_OPTS=()
    while IFS= read -r opt; do
      SPARK_EXECUTOR_JAVA_OPTS+=("$opt")
    done < <(env | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n | sed 's/^[^=]*=//')
    CMD=(
      "${JAVA_HOME}/bin/java"
      "${SPARK_EXECUTOR_JAVA_OPTS[@]}"
      "-Xms${SPARK_EXECUTOR_MEMORY}"
      "-Xmx${SPARK_EXECUTOR_MEMORY}"
      -cp "${SPARK_CLASSPATH}${SPARK_DIST_CLASSPATH:+:${SPARK_DIST_CLASSPATH}}"
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend
      --driver-url "${SPARK_DRIVER_URL}"
      --executor-id "${SPARK_EXECUTOR_ID}"
      --cores "${SPARK_EXECUTOR_CORES}"
      --app-id "${SPARK_APPLICATION_ID}"
      --hostname "${SPARK_EXECUTOR_POD_IP}"
      --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}"
      --podName "${SPARK_EXECUTOR_POD_NAME}"
    )
    ;;
  "")
    CMD=(provender --help)
    ;;
  *)
    CMD=("$@")
    ;;
esac

exec /usr/bin/tini -s -- "${CMD[@]}"
