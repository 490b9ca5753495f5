"""The lakehouse's Spark session: local mode, its jars through Ivy, and S3 when the lake is there.

The configuration is sized for a background job that shares a small machine with Kafka, Ray and
the learners, keeps to loopback, and writes nothing to the working directory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyspark
from pyspark.sql import SparkSession

from rtml.settings import LOOPBACK, Settings

SCALA_VERSION = "2.13"  # pyspark 4 ships Scala 2.13 only
#: The delta-spark Python package is 4.4.1, but Maven Central has no 4.4.1 jars (4.4.0 is the
#: newest published for Spark 4.2); the Python side is only a thin py4j wrapper over them.
DELTA_VERSION = "4.4.0"
#: A background job beside Kafka, Ray and the learners on a 2-core box: two task threads.
SPARK_MASTER = "local[2]"
#: The serial collector returns the JVM's unused heap to the OS; G1 keeps up to the full -Xmx
#: committed. One small, mostly idle driver needs no parallel GC. The JIT stops at C1: C2 spent
#: more CPU recompiling Spark's and Delta's code for minutes after each start than the small
#: micro-batches it speeds up (docs/footprint.md).
JVM_OPTIONS = "-XX:+UseSerialGC -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=30"


def hadoop_version() -> str:
    """The Hadoop release bundled with pyspark (hadoop-aws must match it exactly)."""
    jars = Path(pyspark.__file__).parent / "jars"
    for jar in jars.glob("hadoop-client-api-*.jar"):
        return jar.stem.removeprefix("hadoop-client-api-")
    raise RuntimeError(f"no hadoop-client-api jar in {jars}")


def spark_packages(settings: Settings) -> list[str]:
    """Maven coordinates of the jars the job needs on top of pyspark's own."""
    spark = pyspark.__version__
    spark_minor = ".".join(spark.split(".")[:2])
    packages = [
        f"io.delta:delta-spark_{spark_minor}_{SCALA_VERSION}:{DELTA_VERSION}",
        f"org.apache.spark:spark-sql-kafka-0-10_{SCALA_VERSION}:{spark}",
    ]
    if settings.lake_s3_bucket:
        packages.append(f"org.apache.hadoop:hadoop-aws:{hadoop_version()}")
    return packages


def spark_uri(uri: str) -> str:
    """Hadoop reads S3 through the ``s3a://`` scheme; ``deltalake`` through ``s3://``."""
    return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri


def s3_conf(settings: Settings) -> dict[str, str]:
    """Hadoop S3A settings for an S3-compatible lake ({} for a local one)."""
    if not settings.lake_s3_bucket:
        return {}
    conf = {"spark.hadoop.fs.s3a.endpoint.region": settings.lake_s3_region}
    if settings.lake_s3_endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = settings.lake_s3_endpoint
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"  # MinIO and most S3 clones
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(
            settings.lake_s3_endpoint.startswith("https://")
        ).lower()
    if settings.lake_s3_access_key_id and settings.lake_s3_secret_access_key:
        conf["spark.hadoop.fs.s3a.access.key"] = settings.lake_s3_access_key_id.get_secret_value()
        conf["spark.hadoop.fs.s3a.secret.key"] = (
            settings.lake_s3_secret_access_key.get_secret_value()
        )
    return conf


def warehouse_dir(settings: Settings) -> Path:
    """Where Spark's catalog keeps its default database: the lakehouse's folder in the state
    folder. The catalog creates it when the tables are made (they live in the lake, by path), and
    would otherwise leave ``spark-warehouse/`` in whatever directory the job was started from."""
    return settings.state_dir.resolve() / "lakehouse" / "spark-warehouse"


def spark_conf(settings: Settings) -> dict[str, str]:
    ivy = settings.cache_dir.expanduser().resolve() / "ivy"
    return {
        "spark.master": SPARK_MASTER,
        "spark.app.name": "rtml-lakehouse",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.jars.packages": ",".join(spark_packages(settings)),
        "spark.jars.ivy": str(ivy),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.warehouse.dir": str(warehouse_dir(settings)),
        # Event dates and timestamps in UTC whatever the machine's zone; INT64 microseconds in
        # Parquet (not legacy INT96), which deltalake/Arrow read as timestamp[us, tz=UTC].
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        # Loopback only, no web UI, no console progress bars in the log.
        "spark.driver.host": LOOPBACK,
        "spark.driver.bindAddress": LOOPBACK,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": JVM_OPTIONS,
        # Tiny batches: Spark's defaults (200 shuffle partitions, 50 snapshot partitions for the
        # Delta log) would spend most of each micro-batch scheduling empty tasks.
        "spark.sql.shuffle.partitions": "2",
        "spark.databricks.delta.snapshotPartitions": "2",
        # Nor would they gain from generated code: Spark generates (and formats, with regexes)
        # the Java source of every new plan, and each micro-batch's plans are new. Interpreted
        # expressions cost less than generating code for a few hundred rows (docs/footprint.md).
        "spark.sql.codegen.wholeStage": "false",
        "spark.sql.codegen.factoryMode": "NO_CODEGEN",
        # Python workers (the validation UDF) must be this environment's interpreter.
        "spark.pyspark.python": sys.executable,
        **s3_conf(settings),
    }


def spark_session(settings: Settings) -> SparkSession:
    os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    builder = SparkSession.builder
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
