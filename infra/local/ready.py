"""Readiness probe for the local services: a real client must connect.

    python infra/local/ready.py kafka 127.0.0.1:19092
    python infra/local/ready.py postgres postgresql://aop:aop@127.0.0.1:15432/aop
Exit 0 when the service answers, 1 otherwise.
"""

import sys


def kafka(bootstrap: str) -> None:
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000})
    metadata = admin.list_topics(timeout=3)
    if not metadata.brokers:
        raise RuntimeError("no broker in metadata")
    # A consumer group must work too: this finds the group coordinator, which makes a fresh
    # broker create its offsets topic now rather than in the middle of the first test.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "aop-ready-probe"})
    try:
        consumer.committed([TopicPartition("aop-ready-probe", 0)], timeout=5)
    finally:
        consumer.close()


def postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url, connect_timeout=3) as conn:
        conn.execute("SELECT 1").fetchone()


if __name__ == "__main__":
    probe = {"kafka": kafka, "postgres": postgres}[sys.argv[1]]
    try:
        probe(sys.argv[2])
    except Exception as exc:
        print(f"{sys.argv[1]} not ready: {exc}", file=sys.stderr)
        sys.exit(1)
