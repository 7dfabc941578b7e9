# The Kafka jars from Maven Central (infra/kafka/pom.xml), fetched once into $LIBS. Sourced by
# kafka.sh and kafka-nodes.sh, after common.sh; AOP_LOCAL_KAFKA_LIBS reuses jars fetched
# elsewhere (then nothing is downloaded).
POM=$ROOT/infra/kafka/pom.xml

fetch_jars() {
  local stamp; stamp=$(sha256sum "$POM" | cut -c1-16)
  [ -f "$LIBS/.stamp-$stamp" ] && return 0
  command -v mvn >/dev/null || die "mvn not found (install Maven, e.g. apt-get install maven)"
  log "fetching Kafka jars from Maven Central"
  rm -rf "$LIBS"
  mvn -q -B -f "$POM" dependency:copy-dependencies -DoutputDirectory="$LIBS" -Dmdep.includeScope=runtime \
    || die "mvn dependency:copy-dependencies failed"
  touch "$LIBS/.stamp-$stamp"
}
