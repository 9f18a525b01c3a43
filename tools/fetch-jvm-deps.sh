#!/usr/bin/env bash
# Fetches the JVM artifacts for stream ingestion from Maven Central into .deps/ (ignored by git), with Maven's
# dependency resolution (tools/jvm-deps/*/pom.xml) so that transitive dependencies are right:
#   .deps/kafka/libs/   the Apache Kafka broker and its runtime dependencies, with a log4j2 binding: enough for
#                       `java -cp '.deps/kafka/libs/*' kafka.Kafka server.properties` and kafka.tools.StorageTool
#                       (services/local/kafka.py runs a single-node KRaft broker from it)
#   .deps/spark-kafka/  Spark's Kafka source for PySpark 4.2: only the jars pyspark/jars does not hold already
#   .deps/m2/           Maven's local repository (nothing goes to ~/.m2)
# Idempotent: a stamp records the poms' checksum, and a second run with the same poms does nothing. Prints one
# line. Needs java and mvn; works as root and as a normal user. `make jvm-deps` runs it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="$ROOT/.deps"
POMS=("$ROOT/tools/jvm-deps/kafka/pom.xml" "$ROOT/tools/jvm-deps/spark-kafka/pom.xml")
STAMP="$DEPS/.jvm-deps.stamp"
LOG="$DEPS/fetch-jvm-deps.log"
CENTRAL="https://repo.maven.apache.org/maven2"

say() { echo "jvm-deps: $*"; }
die() { echo "jvm-deps: $*" >&2; exit 1; }
count() { find "$1" -maxdepth 1 -name '*.jar' | wc -l; }
version() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" "$2" | head -n1; }

want="$(cat "${POMS[@]}" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -d "$DEPS/kafka/libs" ] && [ -d "$DEPS/spark-kafka" ]; then
  say "up to date ($(count "$DEPS/kafka/libs") jars in .deps/kafka/libs, $(count "$DEPS/spark-kafka") in .deps/spark-kafka)"
  exit 0
fi

command -v java >/dev/null || die "java not found: install a JDK 17 (Debian: apt-get install openjdk-17-jdk-headless)"
command -v mvn >/dev/null || die "mvn not found: install Maven 3.6 or later (Debian: apt-get install maven)"

mkdir -p "$DEPS"
start=$SECONDS
: >"$LOG"
# Each set goes to a fresh folder first and replaces the old one only when complete.
fetch() {  # fetch <pom> <final folder>
  local pom="$1" out="$2" tmp="$2.tmp"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$out")"
  if ! mvn -B -ntp -Dstyle.color=never -f "$pom" package \
      -Dmaven.repo.local="$DEPS/m2" -Ddeps.out="$tmp" -Ddeps.build="$DEPS/build" >>"$LOG" 2>&1; then
    rm -rf "$tmp"
    if grep -qiE "unknown ?host|could not transfer|connect(ion)? (refused|timed out)|network is unreachable|no route to host|offline" "$LOG"; then
      die "cannot reach Maven Central ($CENTRAL) to fetch $(basename "$(dirname "$pom")") jars: check the network (or a proxy in ~/.m2/settings.xml); Maven's output is in ${LOG#"$ROOT"/}"
    fi
    die "Maven failed to fetch the $(basename "$(dirname "$pom")") jars; see ${LOG#"$ROOT"/}"
  fi
  [ "$(count "$tmp")" -gt 0 ] || die "Maven copied no jars for $pom; see ${LOG#"$ROOT"/}"
  rm -rf "$out"
  mv "$tmp" "$out"
}
fetch "${POMS[0]}" "$DEPS/kafka/libs"
fetch "${POMS[1]}" "$DEPS/spark-kafka"
rm -rf "$DEPS/build"
echo "$want" >"$STAMP"

say "fetched Kafka $(version kafka.version "${POMS[0]}") ($(count "$DEPS/kafka/libs") jars) into .deps/kafka/libs and" \
  "Spark's Kafka source $(version spark.version "${POMS[1]}") ($(count "$DEPS/spark-kafka") jars: $(cd "$DEPS/spark-kafka" && ls -- *.jar | sed 's/-[0-9][0-9.]*\.jar$//' | paste -sd, -))" \
  "into .deps/spark-kafka in $((SECONDS - start)) s"
