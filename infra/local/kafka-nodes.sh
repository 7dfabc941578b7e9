# Apache Kafka (KRaft) clusters of N combined broker+controller nodes on loopback, for the
# cluster modes of `make up-cluster` / `make up-secure`. Sourced by kafka-cluster.sh and
# kafka-secure.sh after they set:
#   NAME      directory under $LOCAL (data, logs, configs, TLS material, secrets)
#   NODES     number of nodes (node ids 1..NODES)
#   SECURITY  PLAINTEXT or SASL_SSL (the client and inter-broker listener)
#   BASE_PORT node i listens on BASE_PORT + 2(i-1) (clients) and that + 1 (controller);
#             AOP_LOCAL_KAFKA_PORT overrides it (tests pass a free block of 2*NODES ports)
# Actions: up | down | status | start NODE | stop NODE | env
#   up      creates what is missing (TLS material and SCRAM users once, storage formatted once
#           per node), starts every node not running and waits until a client sees all NODES
#           brokers and a consumer group works;
#   start N starts node N alone (e.g. after a kill -9) and waits until it answers;
#   env     prints the AOP_* settings a client of this cluster needs (also in client.env).
# SASL_SSL: a throwaway CA, one broker certificate (SAN 127.0.0.1, localhost) and one client
# certificate (mutual TLS is required on the listener, beside SCRAM) are made with openssl; the SCRAM
# users `aop` (SCRAM-SHA-256 and -512, random password) and `admin` (inter-broker) are created
# when the storage is formatted. Nothing of it leaves $LOCAL/$NAME; files holding a secret are
# mode 600. The controller listener stays PLAINTEXT on loopback.
source "$(dirname "$0")/common.sh"
PORT0=${AOP_LOCAL_KAFKA_PORT:-$BASE_PORT}
DIR=$LOCAL/$NAME
LIBS=${AOP_LOCAL_KAFKA_LIBS:-$LOCAL/kafka/libs}
PY=${AOP_PYTHON:-$ROOT/.venv/bin/python}
TLS=$DIR/tls
SECRETS=$DIR/secrets
HEAP=${AOP_LOCAL_KAFKA_HEAP:-512m}
source "$(dirname "$0")/kafka-jars.sh"

client_port() { echo $((PORT0 + 2 * ($1 - 1))); }
controller_port() { echo $((PORT0 + 2 * ($1 - 1) + 1)); }
node_dir() { echo "$DIR/node$1"; }
pidfile() { echo "$(node_dir "$1")/kafka.pid"; }
bootstrap() {
  local out="" i
  for i in $(seq 1 "$NODES"); do out="$out${out:+,}127.0.0.1:$(client_port "$i")"; done
  echo "$out"
}
# replicated like a production cluster once there are three nodes
replication() { if [ "$NODES" -ge 3 ]; then echo 3; else echo "$NODES"; fi; }
min_isr() { if [ "$NODES" -ge 3 ]; then echo 2; else echo 1; fi; }

secret_file() { (umask 077; openssl rand -hex 24 > "$1"); }

make_tls() {
  [ -f "$TLS/ca.crt" ] && return 0
  command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
  log "making a throwaway CA and certificates in $TLS"
  mkdir -p "$TLS" "$SECRETS"; chmod 700 "$TLS" "$SECRETS"
  secret_file "$SECRETS/keystore.password"
  local subj="/O=aop local $NAME" ext="$TLS/san.ext"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' > "$ext"
  (umask 077
   openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "$subj CA/CN=aop-local-ca" \
     -keyout "$TLS/ca.key" -out "$TLS/ca.crt" 2>/dev/null
   for who in broker client; do
     openssl req -newkey rsa:2048 -nodes -subj "$subj/CN=aop-$who" \
       -keyout "$TLS/$who.key" -out "$TLS/$who.csr" 2>/dev/null
     openssl x509 -req -in "$TLS/$who.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" \
       -CAcreateserial -days 30 -extfile "$ext" -out "$TLS/$who.crt" 2>/dev/null
   done
   openssl pkcs12 -export -in "$TLS/broker.crt" -inkey "$TLS/broker.key" -certfile "$TLS/ca.crt" \
     -name broker -out "$TLS/broker.p12" -passout "file:$SECRETS/keystore.password") \
    || die "openssl failed to make the TLS material"
  rm -f "$TLS"/*.csr "$TLS/ca.srl" "$ext"
  chmod 644 "$TLS/ca.crt" "$TLS/client.crt" "$TLS/broker.crt"
}

make_users() {
  [ -f "$SECRETS/aop.password" ] && return 0
  mkdir -p "$SECRETS"; chmod 700 "$SECRETS"
  secret_file "$SECRETS/aop.password"
  secret_file "$SECRETS/admin.password"
}

write_config() {
  local i=$1 d; d=$(node_dir "$1")
  local voters="" j
  for j in $(seq 1 "$NODES"); do voters="$voters${voters:+,}$j@127.0.0.1:$(controller_port "$j")"; done
  mkdir -p "$d/data" "$d/logs"
  (umask 077
   grep -v -E '^(process\.roles|node\.id|controller\.quorum\.voters|listeners|advertised\.listeners|inter\.broker\.listener\.name|listener\.security\.protocol\.map|default\.replication\.factor|offsets\.topic\.replication\.factor|transaction\.state\.log\.|share\.coordinator\.state\.topic\.)' \
     "$ROOT/infra/kafka/server.properties"
   cat <<CONF

# -- $NAME node $i of $NODES (written by infra/local/kafka-nodes.sh) --
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=CLIENT://127.0.0.1:$(client_port "$i"),CONTROLLER://127.0.0.1:$(controller_port "$i")
advertised.listeners=CLIENT://127.0.0.1:$(client_port "$i")
inter.broker.listener.name=CLIENT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,CLIENT:$SECURITY
default.replication.factor=$(replication)
min.insync.replicas=$(min_isr)
offsets.topic.replication.factor=$(replication)
transaction.state.log.replication.factor=$(replication)
transaction.state.log.min.isr=$(min_isr)
share.coordinator.state.topic.replication.factor=$(replication)
share.coordinator.state.topic.min.isr=$(min_isr)
unclean.leader.election.enable=false
log.dirs=$d/data
CONF
   if [ "$SECURITY" = SASL_SSL ]; then
     local admin store jaas
     admin=$(cat "$SECRETS/admin.password"); store=$(cat "$SECRETS/keystore.password")
     jaas="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$admin\";"
     cat <<CONF
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.client.scram-sha-256.sasl.jaas.config=$jaas
listener.name.client.scram-sha-512.sasl.jaas.config=$jaas
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS/broker.p12
ssl.keystore.password=$store
ssl.key.password=$store
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.crt
listener.name.client.ssl.client.auth=required
CONF
   fi) > "$d/server.properties"
}

format_once() {
  local d; d=$(node_dir "$1")
  [ -f "$d/data/meta.properties" ] && return 0
  local args=()
  if [ "$SECURITY" = SASL_SSL ]; then
    local aop admin; aop=$(cat "$SECRETS/aop.password"); admin=$(cat "$SECRETS/admin.password")
    args=(--add-scram "SCRAM-SHA-256=[name=aop,password=$aop]"
          --add-scram "SCRAM-SHA-512=[name=aop,password=$aop]"
          --add-scram "SCRAM-SHA-512=[name=admin,password=$admin]")
  fi
  java -cp "$LIBS/*" -Dlog4j2.configurationFile="$ROOT/infra/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$d/logs" kafka.tools.StorageTool format -t "$(cat "$DIR/cluster.id")" \
    -c "$d/server.properties" "${args[@]}" >"$d/logs/format.log" 2>&1 \
    || { tail -n 20 "$d/logs/format.log" >&2; die "formatting node $1 failed"; }
}

# The librdkafka properties of a client (ready.py) and the AOP_* settings of the pipeline.
write_client_files() {
  (umask 077
   {
     echo "# librdkafka settings of a client of $NAME (infra/local/ready.py reads this)"
     echo "security.protocol=$SECURITY"
     if [ "$SECURITY" = SASL_SSL ]; then
       echo "sasl.mechanism=SCRAM-SHA-256"
       echo "sasl.username=aop"
       echo "sasl.password=$(cat "$SECRETS/aop.password")"
       echo "ssl.ca.location=$TLS/ca.crt"
       echo "ssl.certificate.location=$TLS/client.crt"
       echo "ssl.key.location=$TLS/client.key"
     fi
   } > "$DIR/client.properties"
   {
     echo "# AOP_* settings of a client of $NAME (set -a; source this file; set +a)"
     echo "AOP_KAFKA_BOOTSTRAP=$(bootstrap)"
     echo "AOP_KAFKA_SECURITY_PROTOCOL=$SECURITY"
     if [ "$SECURITY" = SASL_SSL ]; then
       echo "AOP_KAFKA_SASL_MECHANISM=SCRAM-SHA-256"
       echo "AOP_KAFKA_SASL_USERNAME=aop"
       echo "AOP_KAFKA_SASL_PASSWORD_FILE=$SECRETS/aop.password"
       echo "AOP_KAFKA_SSL_CA_FILE=$TLS/ca.crt"
       echo "AOP_KAFKA_SSL_CERT_FILE=$TLS/client.crt"
       echo "AOP_KAFKA_SSL_KEY_FILE=$TLS/client.key"
     fi
     if [ "$NODES" -ge 3 ]; then
       echo "AOP_KAFKA_REPLICATION_FACTOR=$(replication)"
       echo "AOP_KAFKA_MIN_INSYNC_REPLICAS=$(min_isr)"
     fi
   } > "$DIR/client.env")
}

prepare() {
  command -v java >/dev/null || die "java not found (install a Java 17 runtime, e.g. apt-get install openjdk-17-jre-headless)"
  fetch_jars
  mkdir -p "$DIR"
  if [ "$SECURITY" = SASL_SSL ]; then make_tls; make_users; fi
  [ -f "$DIR/cluster.id" ] || java -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1 > "$DIR/cluster.id"
  local i
  for i in $(seq 1 "$NODES"); do write_config "$i"; format_once "$i"; done
  write_client_files
}

ready() {  # ready BOOTSTRAP BROKERS [--no-group]
  "$PY" "$ROOT/infra/local/ready.py" kafka "$1" --config "$DIR/client.properties" --brokers "$2" "${@:3}"
}

launch() {
  local i=$1 d; d=$(node_dir "$1")
  pid_alive "$(pidfile "$i")" && return 0
  setsid nohup java -Xms128m -Xmx"$HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/infra/kafka/log4j2.properties" -Dkafka.logs.dir="$d/logs" \
    -cp "$LIBS/*" kafka.Kafka "$d/server.properties" >>"$d/logs/stdout.log" 2>&1 < /dev/null &
  echo $! > "$(pidfile "$i")"
}

fail_tail() {
  local i
  for i in $(seq 1 "$NODES"); do tail -n 15 "$(node_dir "$i")/logs/server.log" >&2 2>/dev/null || true; done
  exit 1
}

up() {
  prepare
  local i
  for i in $(seq 1 "$NODES"); do launch "$i"; done
  wait_for 120 "$NAME" ready "$(bootstrap)" "$NODES" || fail_tail
  log "ready: $NODES node(s) on $(bootstrap), $SECURITY; client settings in $DIR/client.env"
}

start_node() {
  local i=${1:?node number}
  [ -f "$(node_dir "$i")/server.properties" ] || die "node $i of $NAME was never set up (run up first)"
  launch "$i"
  wait_for 120 "$NAME node $i" ready "127.0.0.1:$(client_port "$i")" 1 --no-group || fail_tail
  log "node $i answers on 127.0.0.1:$(client_port "$i")"
}

stop_node() {
  local i=${1:?node number} f; f=$(pidfile "$1")
  pid_alive "$f" || { rm -f "$f"; return 0; }
  local pid; pid=$(cat "$f")
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && { log "node $i still running after 30s, killing"; kill -9 "$pid"; }
  rm -f "$f"
}

down() {
  local i
  # all at once: a node waits for the others while it hands over its partitions
  for i in $(seq 1 "$NODES"); do stop_node "$i" & done
  wait
  log "stopped"
}

status() {
  local i up=0
  for i in $(seq 1 "$NODES"); do pid_alive "$(pidfile "$i")" && up=$((up + 1)); done
  if [ "$up" = "$NODES" ] && ready "$(bootstrap)" "$NODES"; then echo "$NAME: up ($NODES nodes)"
  else echo "$NAME: $up of $NODES node(s) running"; return 1; fi
}

case "${1:-}" in
  up) up ;; down) down ;; status) status ;;
  start) start_node "${2:-}" ;; stop) stop_node "${2:-}" ;;
  env) [ -f "$DIR/client.env" ] || prepare >/dev/null; grep -v '^#' "$DIR/client.env" ;;
  *) echo "usage: $0 up|down|status|start NODE|stop NODE|env" >&2; exit 64 ;;
esac
