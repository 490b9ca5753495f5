# The rtml runtime image: every rtml pod on Kubernetes runs it (Ray head and workers of the
# RayService and of sweep RayJobs, the lakehouse job, MLflow, producers, the sweep CronJob).
# The Ray base image pins Ray and Python to what pyproject.toml pins (a test checks the tag).
FROM rayproject/ray:2.60.0-py311

# Java for Spark (the lakehouse job), installed as root; everything after runs as `ray` (uid 1000).
USER root
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/*
USER ray
WORKDIR /home/ray/rtml

# Dependencies first (a code change does not re-download them), from pyproject's pins.
COPY --chown=ray:users pyproject.toml README.md ./
COPY --chown=ray:users rtml ./rtml
COPY --chown=ray:users streaming ./streaming
COPY --chown=ray:users ray_apps ./ray_apps
COPY --chown=ray:users jobs ./jobs
COPY --chown=ray:users kuberay ./kuberay
COPY --chown=ray:users verify ./verify
COPY --chown=ray:users examples ./examples
RUN pip install --no-cache-dir '.[cluster]'

# The Kafka source, Delta and hadoop-aws jars, resolved once into the Ivy cache the job reads
# (~/.cache/rtml/ivy, streaming/lakehouse/session.py), so a pod starts offline and at once. A
# bucket name makes spark_packages include hadoop-aws; nothing is written to it.
ENV RTML_CACHE_DIR=/home/ray/.cache/rtml
RUN python -c "from rtml.settings import load_settings; from streaming.lakehouse.session import spark_session; spark_session(load_settings(lake_s3_bucket='image-build')).stop()" \
 && ls "$RTML_CACHE_DIR/ivy/jars" | grep -q delta-spark

ENV RTML_STATE_DIR=/tmp/rtml
