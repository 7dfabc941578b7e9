"""Readiness probe for the local services: a real client must connect.

    python infra/local/ready.py kafka 127.0.0.1:19092
    python infra/local/ready.py kafka 127.0.0.1:29092,127.0.0.1:29094 --brokers 3 \
        --config .local/kafka-cluster/client.properties
    python infra/local/ready.py postgres postgresql://aop:aop@127.0.0.1:15432/aop
Exit 0 when the service answers, 1 otherwise. `--config` names a file of librdkafka
`key=value` lines (security settings of a SASL_SSL cluster); `--brokers N` waits until the
metadata lists N brokers; `--no-group` skips the consumer group probe (a node restarted while
others are down answers metadata before the group coordinator is available).
"""

import argparse
import sys


def client_properties(path: str | None) -> dict[str, str]:
    if path is None:
        return {}
    options = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                options[key.strip()] = value.strip()
    return options


def kafka(bootstrap: str, config: dict[str, str], brokers: int, group: bool) -> None:
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient

    base = {"bootstrap.servers": bootstrap, **config}
    admin = AdminClient({**base, "socket.timeout.ms": 2000})
    metadata = admin.list_topics(timeout=3)
    if len(metadata.brokers) < brokers:
        raise RuntimeError(f"{len(metadata.brokers)} of {brokers} brokers in metadata")
    if not group:
        return
    # A consumer group must work too: this finds the group coordinator, which makes a fresh
    # broker create its offsets topic now rather than in the middle of the first test.
    consumer = Consumer({**base, "group.id": "aop-ready-probe"})
    try:
        consumer.committed([TopicPartition("aop-ready-probe", 0)], timeout=5)
    finally:
        consumer.close()


def postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url, connect_timeout=3) as conn:
        conn.execute("SELECT 1").fetchone()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("service", choices=["kafka", "postgres"])
    parser.add_argument("address")
    parser.add_argument("--config", help="librdkafka properties file (kafka)")
    parser.add_argument("--brokers", type=int, default=1, help="brokers expected (kafka)")
    parser.add_argument("--no-group", action="store_true", help="skip the group probe (kafka)")
    args = parser.parse_args()
    try:
        if args.service == "kafka":
            kafka(args.address, client_properties(args.config), args.brokers, not args.no_group)
        else:
            postgres(args.address)
    except Exception as exc:
        print(f"{args.service} not ready: {exc}", file=sys.stderr)
        sys.exit(1)
