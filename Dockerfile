# FleetVision driver and GPU executor image.
#
#   docker build -t fleetvision:0.1.0 .
#   docker run --gpus all fleetvision:0.1.0 fleetvision --help
#
# One image for the Spark driver and the executors: CUDA runtime, JDK 17, the pinned Python stack
# (TensorFlow with its CUDA wheels), the package, the GPU discovery script, and the Delta Lake jars in
# Spark's own jars folder ($SPARK_HOME/jars), so spark-submit needs no --packages and nothing reaches
# Maven at run time.
# Not built in this repository's CI (no Docker daemon or GPU there); `make lint` runs hadolint on it.

ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04
FROM ${CUDA_IMAGE} AS runtime

ARG DEBIAN_FRONTEND=noninteractive
ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \
    VIRTUAL_ENV=/opt/fleetvision/venv \
    PATH=/opt/fleetvision/venv/bin:$PATH \
    PYSPARK_PYTHON=/opt/fleetvision/venv/bin/python \
    SPARK_HOME=/opt/fleetvision/venv/lib/python3.11/site-packages/pyspark \
    TF_CPP_MIN_LOG_LEVEL=2

# Base OS packages float with the pinned CUDA base image's security updates (hence no apt pins).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3.11 python3.11-venv openjdk-17-jre-headless ca-certificates procps tini \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 1000 fleetvision \
    && useradd --system --uid 1000 --gid fleetvision --create-home fleetvision \
    && mkdir -p /opt/fleetvision && chown fleetvision:fleetvision /opt/fleetvision

WORKDIR /opt/fleetvision
USER 1000:1000

# The package and what it ships (the default profile, the taxonomy, the starter models: the wheel's
# fleetvision/resources, whose starter/ is a link to models/starter) go into the venv; the sources are
# removed in the same step, so nothing at run time can lean on them. Every dependency is pinned in
# pyproject.toml.
COPY --chown=fleetvision:fleetvision pyproject.toml README.md ./
COPY --chown=fleetvision:fleetvision src ./src
COPY --chown=fleetvision:fleetvision models ./models
# hadolint ignore=DL3013
RUN python3.11 -m venv "$VIRTUAL_ENV" \
    && pip install --upgrade "pip==26.3" \
    && pip install ".[gpu]" \
    && rm -rf src models build pyproject.toml README.md

# Beside the venv only what users and spark-submit read: the profiles to copy (conf/cluster-gpu.yaml),
# the spark-submit entry points, the GPU discovery script.
COPY --chown=fleetvision:fleetvision conf ./conf
COPY --chown=fleetvision:fleetvision jobs ./jobs
COPY --chown=fleetvision:fleetvision scripts ./scripts

# Resolve the Delta Lake jars once, at build time, into the Ivy cache named by conf/cluster-gpu.yaml
# (the default profile shipped in the package; relative paths would land in the working directory), which
# plain `fleetvision` runs read offline, and copy them into $SPARK_HOME/jars: spark-submit starts the JVM
# before the job reads its config, so there they are found without --packages (docs/runbook.md, *Running
# on a cluster*). A plain run then has them twice on its classpath, the same release: harmless.
RUN python -c "from fleetvision.config import load_config; from fleetvision.spark import build_spark; \
c = load_config(overrides=['spark.ivy_dir=/opt/fleetvision/ivy', 'paths.warehouse=/tmp/wh']); \
build_spark(c).stop()" \
    && cp /opt/fleetvision/ivy/jars/*.jar "$SPARK_HOME/jars/" \
    && rm -rf /tmp/wh \
    && chmod 0755 scripts/get_gpus_resources.sh scripts/k8s_entrypoint.sh

# Spark on Kubernetes starts pods with `driver ...` / `executor`: the entrypoint turns those into
# spark-submit (client mode) and the executor JVM on the wheel's $SPARK_HOME, as Spark's own images do;
# any other command (`fleetvision score ...`) runs as given (tests/test_k8s_entrypoint.py).
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/fleetvision/scripts/k8s_entrypoint.sh"]
CMD ["fleetvision", "--help"]
