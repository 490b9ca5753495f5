"""A single-node KRaft Kafka broker from the Apache Kafka jars on Maven Central.

The jars of ``org.apache.kafka:kafka_2.13:<version>`` and its runtime dependencies (plus a log4j2
binding for its SLF4J logging) are resolved once with Maven into ``<cache>/kafka/<version>/libs``;
later starts use the cache and need neither Maven nor the network. Storage is formatted on the
first start of a state folder, with a cluster id kept beside it.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from pathlib import Path

from rtml.settings import LOOPBACK, Settings

LOG4J_VERSION = "2.24.3"  # the log4j2 that kafka_2.13 itself depends on

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>rtml.local</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

LOG4J2 = """status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = console
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
"""


class PrerequisiteMissing(RuntimeError):
    """Something the local stack needs is not installed; the message says how to get it."""


def java_major_version() -> int | None:
    java = shutil.which("java")
    if java is None:
        return None
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    try:
        version = out.split('"')[1]
    except IndexError:
        return None
    major = version.split(".")[0]
    return int(version.split(".")[1]) if major == "1" else int(major)


def require_java() -> None:
    major = java_major_version()
    if major is None:
        raise PrerequisiteMissing(
            "Java is not installed: the local Kafka broker needs Java 17+ "
            "(Debian: `apt-get install openjdk-17-jre-headless`), or set RTML_KAFKA_BOOTSTRAP "
            "to an existing broker."
        )
    if major < 17:
        raise PrerequisiteMissing(f"Java {major} found; Kafka 4 needs Java 17 or newer.")


def libs_dir(settings: Settings) -> Path:
    return settings.cache_dir / "kafka" / settings.kafka_version / "libs"


def ensure_jars(settings: Settings) -> Path:
    """The folder of the broker's jars, resolved with Maven on first use."""
    libs = libs_dir(settings)
    done = libs.parent / ".complete"
    if done.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise PrerequisiteMissing(
            f"Maven is needed once to fetch the Kafka {settings.kafka_version} jars into "
            f"{libs.parent} (Debian: `apt-get install maven`), or set RTML_KAFKA_BOOTSTRAP."
        )
    libs.parent.mkdir(parents=True, exist_ok=True)
    pom = libs.parent / "pom.xml"
    pom.write_text(POM.format(version=settings.kafka_version, log4j=LOG4J_VERSION))
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise PrerequisiteMissing(
            f"Maven could not fetch Kafka {settings.kafka_version}:\n{result.stdout[-2000:]}"
        )
    done.write_text(settings.kafka_version)
    return libs


def server_properties(settings: Settings, data_dir: Path) -> str:
    host = LOOPBACK
    return f"""process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{settings.kafka_controller_port}
listeners=PLAINTEXT://{host}:{settings.kafka_port},CONTROLLER://{host}:{settings.kafka_controller_port}
advertised.listeners=PLAINTEXT://{host}:{settings.kafka_port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data_dir.resolve()}
num.partitions={settings.topic_partitions}
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
"""


def prepare(settings: Settings, home: Path) -> list[str]:
    """Write the config, format storage on first start; return the broker's command line."""
    require_java()
    libs = ensure_jars(settings)
    data = home / "data"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "server.properties"
    config.write_text(server_properties(settings, data))
    log4j = home / "log4j2.properties"
    log4j.write_text(LOG4J2)
    classpath = f"{libs}/*"
    java = shutil.which("java") or "java"
    if not (data / "meta.properties").exists():
        # Kafka's Uuid: 16 random bytes, URL-safe base64 without padding.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            [
                java,
                "-cp",
                classpath,
                f"-Dlog4j2.configurationFile={log4j}",
                # "=" form: a base64 id may start with "-" and read as an option
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={cluster_id}",
                "-c",
                str(config),
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")
    return [
        java,
        f"-Xmx{settings.kafka_heap}",
        f"-Xms{settings.kafka_heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        f"-Dkafka.logs.dir={home / 'logs'}",
        "-cp",
        classpath,
        "kafka.Kafka",
        str(config),
    ]
