#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft) with a SASL_SSL listener (SCRAM-SHA-256/512, a
# throwaway CA made by openssl): kafka-secure.sh up|down|status|start NODE|stop NODE|env (see
# kafka-nodes.sh). Listens on 127.0.0.1:29192 (controller :29193, PLAINTEXT, loopback; base
# port AOP_LOCAL_KAFKA_PORT); data, certificates and the `aop` user's password under
# .local/kafka-secure. `make up-secure` / `make down-secure`; the pipeline's settings:
# `bash infra/local/kafka-secure.sh env`.
NAME=kafka-secure NODES=1 SECURITY=SASL_SSL BASE_PORT=29192
source "$(dirname "$0")/kafka-nodes.sh"
