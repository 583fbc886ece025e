#!/usr/bin/env bash
# The Apache Kafka broker the tests start (tests/harness/kafka.py): its runtime jars, resolved by Maven from
# Maven Central (scripts/kafka/pom.xml) once per machine into ~/.cache/officeflow/kafka/<version>/libs.
# `--print-dir` prints that libs folder. Needs Java 17+ and Maven (apt: openjdk-17-jre-headless maven).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$HERE/pom.xml"
VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
CACHE="${OFFICEFLOW_KAFKA_CACHE:-$HOME/.cache/officeflow/kafka}/$VERSION"
LIBS="$CACHE/libs"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$LIBS"
  exit 0
fi

# The pom's hash marks a complete resolve: an interrupted one is redone, a changed pom resolves again.
want="$(sha256sum "$POM" | cut -d' ' -f1)"
if [[ -f "$CACHE/.pom.sha256" && "$(cat "$CACHE/.pom.sha256")" == "$want" ]]; then
  exit 0
fi
command -v java >/dev/null 2>&1 || { echo "Java 17+ is needed for the tests' Kafka broker" >&2; exit 1; }
command -v mvn >/dev/null 2>&1 || { echo "Maven is needed to fetch the tests' Kafka broker" >&2; exit 1; }
printf '\033[1;34m[officeflow]\033[0m %s\n' "resolving Apache Kafka $VERSION from Maven Central (once)" >&2
rm -rf "$LIBS"
mkdir -p "$CACHE"
mvn -B -q -f "$POM" dependency:copy-dependencies -DoutputDirectory="$LIBS" -DincludeScope=runtime >&2
echo "$want" > "$CACHE/.pom.sha256"
