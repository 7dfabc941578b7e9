#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft) from Maven Central jars: kafka.sh up|down|status.
# Data and logs under .local/kafka; listens on 127.0.0.1:19092 (controller 19093).
# AOP_LOCAL_KAFKA_PORT moves both (controller = port + 1), e.g. for a second checkout.
# AOP_LOCAL_KAFKA_LIBS reuses jars already fetched elsewhere (e.g. a second broker started by
# the fault tests under another AOP_LOCAL_DIR), so it starts without a Maven download.
source "$(dirname "$0")/common.sh"
PORT=${AOP_LOCAL_KAFKA_PORT:-19092}
KDIR=$LOCAL/kafka
LIBS=${AOP_LOCAL_KAFKA_LIBS:-$KDIR/libs}
CONF=$KDIR/server.properties
PIDFILE=$KDIR/kafka.pid
PY=${AOP_PYTHON:-$ROOT/.venv/bin/python}
source "$(dirname "$0")/kafka-jars.sh"

write_config() {
  mkdir -p "$KDIR/data" "$KDIR/logs"
  sed -e "s/19093/$((PORT + 1))/g" -e "s/19092/$PORT/g" "$ROOT/infra/kafka/server.properties" > "$CONF"
  echo "log.dirs=$KDIR/data" >> "$CONF"
}

format_once() {
  [ -f "$KDIR/data/meta.properties" ] && return 0
  local id; id=$(java -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
  log "formatting storage (cluster $id)"
  java -cp "$LIBS/*" -Dlog4j2.configurationFile="$ROOT/infra/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$KDIR/logs" kafka.tools.StorageTool format -t "$id" -c "$CONF" >/dev/null
}

ready() { "$PY" "$ROOT/infra/local/ready.py" kafka "127.0.0.1:$PORT"; }

up() {
  if pid_alive "$PIDFILE"; then log "already running (pid $(cat "$PIDFILE"))"; wait_for 60 Kafka ready; return 0; fi
  command -v java >/dev/null || die "java not found (install a Java 17 runtime, e.g. apt-get install openjdk-17-jre-headless)"
  fetch_jars; write_config; format_once
  log "starting broker"
  setsid nohup java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/infra/kafka/log4j2.properties" -Dkafka.logs.dir="$KDIR/logs" \
    -cp "$LIBS/*" kafka.Kafka "$CONF" >"$KDIR/logs/stdout.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  wait_for 90 Kafka ready || { tail -n 30 "$KDIR/logs/stdout.log" "$KDIR/logs/server.log" >&2; exit 1; }
  log "ready on 127.0.0.1:$PORT"
}

down() {
  pid_alive "$PIDFILE" || { rm -f "$PIDFILE"; log "not running"; return 0; }
  local pid; pid=$(cat "$PIDFILE")
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && { log "still running after 30s, killing"; kill -9 "$pid"; }
  rm -f "$PIDFILE"
  log "stopped"
}

status() { if pid_alive "$PIDFILE" && ready; then echo "kafka: up"; else echo "kafka: down"; return 1; fi; }

case "${1:-}" in
  up) up ;; down) down ;; status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 64 ;;
esac
