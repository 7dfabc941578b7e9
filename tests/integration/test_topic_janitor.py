"""The session's topic janitor deletes the topics under the prefixes it tracks, and no other."""

from __future__ import annotations

import time
import uuid

from confluent_kafka.admin import AdminClient, NewTopic

from tests.topics import TopicJanitor


def topics_named(admin: AdminClient, names: set[str]) -> set[str]:
    return names & set(admin.list_topics(timeout=10).topics)


def test_delete_all_removes_the_tracked_prefixes_topics_only(kafka_bootstrap: str) -> None:
    run = uuid.uuid4().hex[:8]
    tracked, other = f"jan{run}a.", f"jan{run}b."
    names = {f"{tracked}x", f"{tracked}y.z", f"{other}x"}
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.create_topics([NewTopic(n, 1, 1) for n in sorted(names)]).values():
        future.result(30)
    janitor = TopicJanitor()
    janitor.bootstrap = kafka_bootstrap
    assert janitor.track(tracked) == tracked
    try:
        assert janitor.delete_all() == 2
        deadline = time.monotonic() + 30
        while topics_named(admin, names) != {f"{other}x"} and time.monotonic() < deadline:
            time.sleep(0.2)
        assert topics_named(admin, names) == {f"{other}x"}
        assert janitor.delete_all() == 0  # nothing tracked any more
    finally:
        for future in admin.delete_topics([f"{other}x"], operation_timeout=30).values():
            future.result(30)


def test_delete_all_without_a_broker_or_prefixes_does_nothing() -> None:
    janitor = TopicJanitor()
    assert janitor.delete_all() == 0  # nothing tracked
    janitor.track("never-used.")
    assert janitor.delete_all() == 0  # no test reached a broker
    janitor.bootstrap = "127.0.0.1:1"
    assert janitor.delete_all(timeout=1) == 0  # a broker that does not answer is left alone
