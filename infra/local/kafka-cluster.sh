#!/usr/bin/env bash
# Local three-node Apache Kafka cluster (KRaft, each node broker + controller), PLAINTEXT on
# loopback: kafka-cluster.sh up|down|status|start NODE|stop NODE|env (see kafka-nodes.sh).
# Nodes on 127.0.0.1:29092, :29094, :29096 (controllers :29093, :29095, :29097; base port
# AOP_LOCAL_KAFKA_PORT); data under .local/kafka-cluster; default replication factor 3,
# min.insync.replicas 2. `make up-cluster` / `make down-cluster`.
NAME=kafka-cluster NODES=3 SECURITY=PLAINTEXT BASE_PORT=29092
source "$(dirname "$0")/kafka-nodes.sh"
