"""The topics a test session creates, deleted when it ends.

Every test writes under a fresh topic prefix, so a developer's broker gained hundreds of topics
per run and kept them: thousands of topics (15 GB) made the local broker take minutes to start.
Prefixes are tracked as tests take them and deleted in one call at the end of the session (no
cost per test). CI starts from an empty broker; this is for the machines that run `make test`
again and again.
"""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

__all__ = ["JANITOR", "TopicJanitor"]


class TopicJanitor:
    """Remembers topic prefixes, deletes their topics on `delete_all`."""

    def __init__(self) -> None:
        #: the broker the session's tests used (None: no test reached one).
        self.bootstrap: str | None = None
        self._prefixes: set[str] = set()

    def track(self, prefix: str) -> str:
        """Delete the topics under `prefix` when the session ends; returns `prefix`."""
        self._prefixes.add(prefix)
        return prefix

    def delete_all(self, timeout: float = 60.0) -> int:
        """Delete every topic under a tracked prefix; returns how many were deleted.

        A broker that does not answer is left alone (the session is ending either way).
        """
        if self.bootstrap is None or not self._prefixes:
            return 0
        prefixes = tuple(self._prefixes)
        self._prefixes.clear()
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        try:
            topics = admin.list_topics(timeout=min(10.0, timeout)).topics
            names = [t for t in topics if t.startswith(prefixes)]
            if not names:
                return 0
            futures = admin.delete_topics(names, operation_timeout=timeout)
            deleted = 0
            for future in futures.values():
                try:
                    future.result(timeout)
                except KafkaException:
                    continue  # already gone, or the broker is busy: nothing to repair here
                deleted += 1
            return deleted
        except KafkaException:
            return 0


JANITOR = TopicJanitor()
