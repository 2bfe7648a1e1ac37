"""Typed settings, built once at the edge: command-line options, then ``MMSGATE_*`` environment
variables, then a TOML file (``MMSGATE_CONFIG``), then the defaults below."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    """Every setting of a gateway process. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(env_prefix="MMSGATE_", extra="ignore", frozen=True)

    data_dir: Path = Field(default=Path("mmsgate-data"), description="where SQLite, media and demo.json live")
    database: str | None = Field(
        default=None, description="postgresql://... to use PostgreSQL; default: SQLite in data_dir"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = Field(default=None, description="base URL the gateway is reached at")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="largest accepted API body")
    http_header_timeout: float = Field(
        default=10.0, gt=0, description="seconds a request's headers may take to arrive (else 408, closed)"
    )
    http_body_timeout: float = Field(
        default=30.0, gt=0, description="seconds a request's body may take after its headers (else 408, closed)"
    )
    http_max_connections: int = Field(
        default=1000, ge=1, description="open HTTP connections per process; more are answered 503 and closed"
    )
    trusted_proxies: str = Field(
        default="",
        description="comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the console's client",
    )
    auth_cache_seconds: float = Field(
        default=1.0, ge=0, description="how long a key and its account's settings are cached per process"
    )
    group_commit_max: int = Field(default=512, ge=1, description="most requests committed together")
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "FULL"
    pg_pool_size: int = Field(
        default=12, ge=1, description="PostgreSQL connections per process (accepts commit on up to 6 at once)"
    )
    job_lease_seconds: float = Field(
        default=15.0,
        gt=0,
        description="how long a worker holds a job or a postback without renewing it: a dead worker's work "
        "is taken again this long after its last renewal",
    )
    lease_renew_seconds: float = Field(
        default=5.0,
        gt=0,
        description="how often a worker renews the leases of the jobs and postbacks it holds (at least three "
        "times a lease)",
    )
    job_retry_base: float = Field(
        default=5.0, gt=0, description="seconds before a failed job's first retry; doubled each attempt"
    )
    job_retry_cap: float = Field(default=600.0, gt=0, description="most seconds between two attempts of a job")
    job_max_attempts: int = Field(default=8, ge=1, description="attempts of a job before its failure is final")
    worker_concurrency: int = Field(default=64, ge=1, description="jobs one worker process runs at once")
    workers: bool = Field(default=True, description="`serve` runs the job workers in its process")
    media_allow_networks: str = Field(
        default="", description="comma-separated CIDRs media may be fetched from although not public"
    )
    media_processes: int = Field(default=0, ge=0, description="processes that check and adapt media; 0: one per core")
    media_connect_timeout: float = Field(default=5.0, gt=0)
    media_read_timeout: float = Field(default=10.0, gt=0)
    media_total_timeout: float = Field(default=30.0, gt=0)
    media_max_image_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    media_max_audio_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    media_max_video_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    media_max_contact_bytes: int = Field(default=1024 * 1024, ge=1024)
    media_max_calendar_bytes: int = Field(default=1024 * 1024, ge=1024)
    media_max_pdf_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    media_cache_bytes: int = Field(default=512 * 1024 * 1024, ge=0, description="0 turns the cache off")
    media_cache_fresh_seconds: float = Field(
        default=300.0, ge=0, description="a cached URL younger than this is reused without asking the origin"
    )
    media_cache_max_age: float = Field(default=86400.0, gt=0, description="older cache entries are fetched anew")
    carrier_profile: str = Field(default="default", description="name of a profile in carrier_profiles")
    carrier_profiles: dict[str, dict[str, int | bool]] = Field(
        default_factory=lambda: {
            "default": {"max_message_bytes": 600_000, "max_image_width": 640, "max_image_height": 480},
            "small": {"max_message_bytes": 300_000, "max_image_width": 320, "max_image_height": 240},
            "large": {"max_message_bytes": 1_200_000, "max_image_width": 1280, "max_image_height": 960},
        },
        description="carrier limits by name: max_message_bytes, max_image_width, max_image_height, animated_gif",
    )
    demo: bool = Field(default=True, description="create the demo account on first start of `serve`")
    carrier: str = Field(default="sandbox", description="the carrier messages are submitted to (sandbox, ...)")
    carrier_max_per_second: int = Field(
        default=0, ge=0, description="most submits to the carrier in any second, over all processes; 0: no limit"
    )
    postback_timeout: float = Field(default=10.0, gt=0, description="a receiver must answer 2xx within this")
    postback_retries: int = Field(default=5, ge=0, description="retries after a failed postback")
    postback_retry_interval: float = Field(default=300.0, gt=0, description="seconds between postback retries")
    postback_concurrency: int = Field(default=256, ge=1, description="postbacks in flight per process")
    postback_per_account: int = Field(default=64, ge=1, description="postbacks in flight per account and process")
    postback_allow_networks: str = Field(
        default="", description="comma-separated CIDRs postbacks may go to although not public"
    )
    inbound_retention_seconds: float = Field(
        default=7 * 86400.0, gt=0, description="how long the content URLs of inbound MMS work"
    )
    inbound_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, description="largest inbound MMS taken")
    sms_fallback_codes: str = Field(
        default="",
        description="comma-separated carrier status codes that mean the handset cannot take MMS: "
        "such a rejection falls back to SMS (a carrier's own not-MMS-capable answers always do)",
    )
    connection_refresh_seconds: float = Field(
        default=5.0, gt=0, description="how often workers look for added, changed or removed MM7 and SMPP connections"
    )
    sandbox_api: bool = Field(default=True, description="serve /v1/sandbox/ (virtual handsets)")
    retention_days: float = Field(
        default=7.0, gt=0, description="days finished jobs, ended postbacks and sandbox records are kept"
    )
    prune_interval: float = Field(default=600.0, gt=0, description="seconds between two prunes by a worker")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in value.split(","):
            if item.strip():
                try:
                    ipaddress.ip_network(item.strip(), strict=False)
                except ValueError as exc:
                    raise ValueError(f"{item.strip()!r} is not a network in CIDR form (e.g. 10.0.0.0/8)") from exc
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("MMSGATE_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @property
    def database_url(self) -> str:
        """The database in URL form: the configured one, or the SQLite file in the data directory."""
        if self.database:
            return self.database
        return f"sqlite:///{(self.data_dir / 'mmsgate.sqlite3').resolve()}"

    @property
    def database_address(self) -> str:
        """Where the database is, for messages (no user name or password): HOST:PORT, or the SQLite file."""
        if not self.database:
            return str((self.data_dir / "mmsgate.sqlite3").resolve())
        parts = urlsplit(self.database)
        if not parts.scheme.startswith("postgres"):
            return parts.path or self.database
        try:
            port = parts.port or 5432
        except ValueError:
            port = 5432
        host = parts.hostname or parse_qs(parts.query).get("host", ["localhost"])[0]
        return f"{host}:{port}"


def load_settings(**overrides: object) -> Settings:
    """Build the settings; ``None`` overrides (options not given on the command line) are dropped."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**given)  # type: ignore[arg-type]
