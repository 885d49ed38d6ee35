#!/usr/bin/env bash
# The image's entrypoint: Spark on Kubernetes' container contract, then anything else passes through.
#
# Spark's Kubernetes scheduler starts the driver pod with `driver <spark-submit args>` and each executor
# pod with `executor`, the executor's settings in environment variables (SPARK_DRIVER_URL,
# SPARK_EXECUTOR_ID, SPARK_EXECUTOR_CORES, SPARK_EXECUTOR_MEMORY, SPARK_APPLICATION_ID,
# SPARK_EXECUTOR_POD_IP, SPARK_EXECUTOR_POD_NAME, SPARK_RESOURCE_PROFILE_ID, SPARK_JAVA_OPT_<n>).
# Spark's own images read them in their entrypoint.sh; the pyspark wheel this image installs does not
# ship that script, so this one follows the same contract with the wheel's $SPARK_HOME (its jars/
# holds spark-kubernetes and, copied at build time, Delta's jars). Any other command (`fleetvision
# score ...`, `bash`) runs as given. docs/runbook.md, *Running on a cluster*.
set -eo pipefail

spark_classpath() {
  local cp="${SPARK_CLASSPATH:+$SPARK_CLASSPATH:}${SPARK_HOME}/jars/*"
  [ -n "${SPARK_EXTRA_CLASSPATH:-}" ] && cp="$cp:$SPARK_EXTRA_CLASSPATH"
  [ -n "${HADOOP_CONF_DIR:-}" ] && cp="$HADOOP_CONF_DIR:$cp"
  cp="${SPARK_CONF_DIR:-$SPARK_HOME/conf}:$cp"
  [ -n "${SPARK_DIST_CLASSPATH:-}" ] && cp="$cp:$SPARK_DIST_CLASSPATH"
  printf '%s:%s' "$cp" "$PWD"  # the working directory too, as Spark's entrypoint does (SPARK-43540)
}

require() {  # require MODE VAR...: exit 64 naming the first unset one
  local mode="$1" name
  shift
  for name in "$@"; do
    if [ -z "${!name:-}" ]; then
      echo "k8s_entrypoint: $mode mode needs \$$name (set by Spark's Kubernetes scheduler)" >&2
      exit 64
    fi
  done
}

: "${SPARK_HOME:?k8s_entrypoint: SPARK_HOME is not set}"
JAVA_BIN="${JAVA_HOME:+$JAVA_HOME/bin/}java"

case "${1:-}" in
  driver)
    shift
    require driver SPARK_DRIVER_BIND_ADDRESS
    exec "$SPARK_HOME/bin/spark-submit" \
      --conf "spark.driver.bindAddress=$SPARK_DRIVER_BIND_ADDRESS" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=$SPARK_DRIVER_BIND_ADDRESS" \
      --deploy-mode client \
      "$@"
    ;;
  executor)
    shift
    require executor SPARK_DRIVER_URL SPARK_EXECUTOR_ID SPARK_EXECUTOR_CORES SPARK_EXECUTOR_MEMORY \
      SPARK_APPLICATION_ID SPARK_EXECUTOR_POD_IP
    java_opts=()
    for v in "${!SPARK_JAVA_OPT_@}"; do
      java_opts+=("${!v}")
    done
    exec "$JAVA_BIN" "${java_opts[@]}" \
      -Xms"$SPARK_EXECUTOR_MEMORY" -Xmx"$SPARK_EXECUTOR_MEMORY" \
      -cp "$(spark_classpath)" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "$SPARK_DRIVER_URL" \
      --executor-id "$SPARK_EXECUTOR_ID" \
      --cores "$SPARK_EXECUTOR_CORES" \
      --app-id "$SPARK_APPLICATION_ID" \
      --hostname "$SPARK_EXECUTOR_POD_IP" \
      --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
      --podName "${SPARK_EXECUTOR_POD_NAME:-$(hostname)}"
    ;;
  "")
    exec fleetvision --help
    ;;
  *)
    exec "$@"
    ;;
esac
