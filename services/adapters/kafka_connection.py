"""How the services and the commands reach Kafka: the bootstrap servers and, for a cluster
that asks for them, TLS (with a client certificate if it wants one) and SASL (the settings:
`services.settings.KafkaSecuritySettings`).

One description serves both kinds of client: FastStream's brokers take its `security` as
it is, and the plain aiokafka clients (the admin client, the lag monitor's readers, the
commands) take the arguments FastStream itself makes of it, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faststream.security import BaseSecurity


@dataclass(frozen=True)
class KafkaConnection:
    bootstrap_servers: str
    security: BaseSecurity | None = None  # None: plaintext, no authentication (the embedded broker)

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for an aiokafka producer, consumer or admin client."""
        if self.security is None:
            return {"bootstrap_servers": self.bootstrap_servers}
        # Imported here: FastStream as a whole comes with it (half a second), which a command
        # reaching a plaintext broker, or none, need not wait for.
        from faststream.kafka.security import parse_security

        return {"bootstrap_servers": self.bootstrap_servers, **parse_security(self.security)}

    def __str__(self) -> str:
        return self.bootstrap_servers
