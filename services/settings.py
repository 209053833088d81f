"""Settings from the environment, read once at start-up; a missing secret stops the process
with a message instead of failing on the first event."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.tariffs import DEFAULT_TARIFF_DIR


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(description="host:port[,host:port]")
    database_url: str = Field(description="postgresql://user:password@host:port/db")
    pseudonym_key: SecretStr = Field(
        min_length=32, description="HMAC key for patient pseudonyms; at least 32 characters."
    )
    # One or more directories of tariff files, separated like PATH.
    tariff_dir: str = str(DEFAULT_TARIFF_DIR)
    intake_group_prefix: str = "samhandling-intake"
    settlement_group: str = "samhandling-settlement"
    intake_max_batch: int = Field(default=2000, ge=1)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    outbox_poll_seconds: float = Field(default=0.1, gt=0)
    # Off unless a fault test turns it on: exits the process after a close commits and
    # before its statements are published, to prove the outbox loses nothing.
    fault_crash_after_close_commit: bool = False


def load_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # fields come from the environment
