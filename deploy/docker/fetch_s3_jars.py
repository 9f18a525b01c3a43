"""Add the S3A connector to PySpark's jars (run at image build time, deploy/docker/Dockerfile).

PySpark from PyPI ships Hadoop's client jars but not hadoop-aws, which `s3a://` needs. This fetches, from Maven
Central, the hadoop-aws jar of the same Hadoop version as PySpark's hadoop-client-api jar, and the AWS SDK v2
bundle of the version that Hadoop release was built against (read from its hadoop-project pom).

    python fetch_s3_jars.py /opt/venv/lib/python3.11/site-packages/pyspark/jars
"""

from __future__ import annotations

import re
import sys
import urllib.request
from pathlib import Path

MAVEN = "https://repo1.maven.org/maven2"


def hadoop_version(jars: Path) -> str:
    for jar in jars.glob("hadoop-client-api-*.jar"):
        match = re.fullmatch(r"hadoop-client-api-(.+)\.jar", jar.name)
        if match:
            return match.group(1)
    raise SystemExit(f"no hadoop-client-api-*.jar in {jars}: is this PySpark's jars directory?")


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=300) as response:
        return response.read()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    jars = Path(argv[0])
    version = hadoop_version(jars)
    pom = fetch(f"{MAVEN}/org/apache/hadoop/hadoop-project/{version}/hadoop-project-{version}.pom").decode()
    match = re.search(r"<aws-java-sdk-v2\.version>([^<]+)</aws-java-sdk-v2\.version>", pom)
    if not match:
        raise SystemExit(f"hadoop-project {version}: no aws-java-sdk-v2.version property")
    sdk = match.group(1)
    wanted = {
        f"hadoop-aws-{version}.jar": f"{MAVEN}/org/apache/hadoop/hadoop-aws/{version}/hadoop-aws-{version}.jar",
        f"bundle-{sdk}.jar": f"{MAVEN}/software/amazon/awssdk/bundle/{sdk}/bundle-{sdk}.jar",
    }
    for name, url in wanted.items():
        (jars / name).write_bytes(fetch(url))
        print(f"added {name} to {jars}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
