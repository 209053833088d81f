"""How the services and the commands reach Kafka: the bootstrap servers and, for a cluster
that asks for them, TLS (with a client certificate if it wants one) and SASL.

One description, `KafkaConnection`, serves both kinds of client: FastStream's brokers take
its `security` as it is, and the plain aiokafka clients (the admin client, the lag
monitor's readers, the commands) take the arguments FastStream itself makes of it, so the
two cannot drift apart.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, Literal

from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import FilePath, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

_SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


class KafkaSecurityUnusable(ValueError):
    """The TLS or SASL settings cannot be used (a certificate, key or CA file that does not
    load, or a broker that cannot take them); says which and why."""


@dataclass(frozen=True)
class KafkaConnection:
    bootstrap_servers: str
    security: BaseSecurity | None = None  # None: plaintext, no authentication (the embedded broker)

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for an aiokafka producer, consumer or admin client."""
        return {"bootstrap_servers": self.bootstrap_servers, **parse_security(self.security)}

    def __str__(self) -> str:
        return self.bootstrap_servers


class KafkaSecuritySettings(BaseSettings):
    """TLS and SASL from the environment, checked at start-up: an incomplete or
    contradictory setting stops the process with the variable's name rather than failing
    at the first connection (or connecting without the security it asked for)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    # With SASL_PLAINTEXT or SASL_SSL. PLAIN sends the password itself: use it over SASL_SSL only.
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # With SSL or SASL_SSL. Without a CA file the system's trusted CAs verify the brokers.
    kafka_ssl_cafile: FilePath | None = None
    # A client certificate and its key (PEM), for a cluster that authenticates clients by TLS.
    kafka_ssl_certfile: FilePath | None = None
    kafka_ssl_keyfile: FilePath | None = None
    kafka_ssl_key_password: SecretStr | None = None

    @property
    def _sasl(self) -> bool:
        return self.kafka_security_protocol.startswith("SASL_")

    @property
    def _tls(self) -> bool:
        return self.kafka_security_protocol.endswith("SSL")

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecuritySettings:
        protocol = f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
        credentials = self.kafka_sasl_username is not None or self.kafka_sasl_password is not None
        if self._sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(f"{protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        if credentials and not self._sasl:
            raise ValueError(
                f"KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set, but {protocol} sends no credentials: "
                "set KAFKA_SECURITY_PROTOCOL=SASL_SSL (or SASL_PLAINTEXT)"
            )
        files = (self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
        if not self._tls and any(f is not None for f in files):
            raise ValueError(
                f"a KAFKA_SSL_ file is set, but {protocol} uses no TLS: set KAFKA_SECURITY_PROTOCOL=SSL "
                "(or SASL_SSL)"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together: set both or neither")
        return self

    @property
    def configured(self) -> bool:
        """Whether anything but plaintext was asked for."""
        return self.kafka_security_protocol != "PLAINTEXT"

    def security(self) -> BaseSecurity | None:
        """FastStream's description of it; the TLS context is made here, so call it at start-up."""
        context = self._tls_context() if self._tls else None
        if not self._sasl:
            return BaseSecurity(ssl_context=context) if context else None
        assert self.kafka_sasl_username is not None and self.kafka_sasl_password is not None  # _consistent
        return _SASL[self.kafka_sasl_mechanism](
            self.kafka_sasl_username,
            self.kafka_sasl_password.get_secret_value(),
            ssl_context=context,
            use_ssl=context is not None,
        )

    def _tls_context(self) -> ssl.SSLContext:
        # Verifies the brokers' certificates and host names, as Kafka's own clients do.
        try:
            context = ssl.create_default_context(cafile=self.kafka_ssl_cafile)
        except (ssl.SSLError, ValueError) as exc:
            raise KafkaSecurityUnusable(f"KAFKA_SSL_CAFILE {self.kafka_ssl_cafile}: {exc}") from exc
        if self.kafka_ssl_certfile is not None:
            password = self.kafka_ssl_key_password.get_secret_value() if self.kafka_ssl_key_password else None
            try:
                context.load_cert_chain(self.kafka_ssl_certfile, self.kafka_ssl_keyfile, password)
            except (ssl.SSLError, ValueError) as exc:
                raise KafkaSecurityUnusable(
                    f"KAFKA_SSL_CERTFILE {self.kafka_ssl_certfile} with KAFKA_SSL_KEYFILE "
                    f"{self.kafka_ssl_keyfile}: {exc}"
                ) from exc
        return context

    def connection(self, bootstrap_servers: str) -> KafkaConnection:
        return KafkaConnection(bootstrap_servers, self.security())
