"""Settings, read once from the environment. Nothing else in Kwit reads os.environ.

Every variable may instead be given as VARIABLE_FILE, naming a file that holds the value (for
Docker/Kubernetes secrets). A bad value raises ConfigError naming the variable.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from compliance.retention import PRESETS
from models import VatRate
from models.session import Timeouts

VAT_RATES = tuple(rate.value for rate in VatRate)
RETENTION_PROFILES = PRESETS
ENVIRONMENTS = ("development", "production", "test")

# A fixed key for development and the demo only. Production refuses to start with it.
DEV_ENCRYPTION_KEY = "a3dpdC1kZXZlbG9wbWVudC1rZXktbm90LWZvci1wcm8="


class ConfigError(Exception):
    """A configuration mistake. `variable` names the environment variable at fault."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class _Env:
    """Reads VARIABLE or VARIABLE_FILE, never both, from a mapping."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str | None = None) -> str | None:
        direct = self._environ.get(name)
        file_name = self._environ.get(f"{name}_FILE")
        if direct is not None and file_name is not None:
            raise ConfigError(name, f"set either {name} or {name}_FILE, not both")
        if file_name is not None:
            try:
                value = Path(file_name).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{name}_FILE", f"cannot read {file_name!r}: {exc.strerror}")
            return value or default
        if direct is None or direct.strip() == "":
            return default
        return direct.strip()

    def items(self, name: str) -> tuple[str, ...]:
        raw = self.text(name)
        return tuple(part.strip() for part in raw.split(",") if part.strip()) if raw else ()

    def integer(self, name: str, default: int, *, minimum: int = 0) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(name, f"expected a whole number, got {raw!r}")
        if value < minimum:
            raise ConfigError(name, f"must be at least {minimum}, got {value}")
        return value

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(name, f"expected a number, got {raw!r}")
        if value < minimum:
            raise ConfigError(name, f"must be at least {minimum}, got {value}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f"expected true or false, got {raw!r}")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default) or default
        if value not in choices:
            raise ConfigError(name, f"expected one of {', '.join(choices)}, got {value!r}")
        return value


@dataclass(frozen=True)
class Settings:
    """Kwit's whole configuration. See README "Configuration" for each variable."""

    env: str = "development"
    database_url: str = "sqlite:///kwit.db"
    db_connect_timeout: float = 3.0
    db_statement_timeout: float = 30.0
    redis_url: str | None = None
    queue_name: str = "kwit"
    encryption_keys: tuple[str, ...] = (DEV_ENCRYPTION_KEY,)
    stripe_webhook_secrets: tuple[str, ...] = ()
    stripe_tolerance: int = 300
    stripe_livemode: bool = False
    paynow_api_key: str | None = None
    paynow_signature_key: str | None = None
    paynow_base_url: str = "https://api.paynow.pl"
    paynow_sync_age: int = 900
    ifirma_user: str | None = None
    ifirma_invoice_key: str | None = None
    ifirma_abonent_key: str | None = None
    ifirma_base_url: str = "https://www.ifirma.pl/iapi"
    ifirma_timeout: float = 60.0
    ksef_enabled: bool = True
    retention_profile: str = "PL"
    retention_policy_file: str | None = None
    income_tax_overlay: bool = True
    default_vat_rate: str = "23"
    blob_dir: str = "var/blobs"
    job_lease_seconds: int = 180
    sweep_interval: float = 30.0
    retention_daily: bool = False
    log_level: str = "INFO"
    public_url: str | None = None
    trusted_proxies: int = 0
    auth_failure_limit: int = 10
    auth_failure_window: int = 300

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def db_timeouts(self) -> Timeouts:
        return Timeouts(connect=self.db_connect_timeout, statement=self.db_statement_timeout)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the configuration; raise ConfigError naming the culprit."""
        env = _Env(os.environ if environ is None else environ)
        mode = env.choice("KWIT_ENV", "development", ENVIRONMENTS)
        keys = env.items("KWIT_ENCRYPTION_KEYS")
        ifirma_timeout = env.number("KWIT_IFIRMA_TIMEOUT", 60.0, minimum=1.0)
        lease = env.integer("KWIT_JOB_LEASE_SECONDS", 180, minimum=5)
        if lease <= ifirma_timeout + 5:
            # A job's lease must outlive its longest iFirma call, or a second worker could
            # take over an invoice whose first POST is still in flight.
            raise ConfigError(
                "KWIT_JOB_LEASE_SECONDS",
                f"must exceed KWIT_IFIRMA_TIMEOUT ({ifirma_timeout:g} s) by more than 5 s",
            )
        settings = cls(
            env=mode,
            database_url=_database_url(env.text("KWIT_DATABASE_URL", "sqlite:///kwit.db")),
            db_connect_timeout=env.number("KWIT_DB_CONNECT_TIMEOUT", 3.0, minimum=1.0),
            db_statement_timeout=env.number("KWIT_DB_STATEMENT_TIMEOUT", 30.0, minimum=0.0),
            redis_url=_redis_url(env.text("KWIT_REDIS_URL")),
            queue_name=env.text("KWIT_QUEUE_NAME", "kwit") or "kwit",
            encryption_keys=_fernet_keys(keys) if keys else (DEV_ENCRYPTION_KEY,),
            stripe_webhook_secrets=env.items("KWIT_STRIPE_WEBHOOK_SECRETS"),
            stripe_tolerance=env.integer("KWIT_STRIPE_TOLERANCE", 300, minimum=1),
            stripe_livemode=env.boolean("KWIT_STRIPE_LIVEMODE", False),
            paynow_api_key=env.text("KWIT_PAYNOW_API_KEY"),
            paynow_signature_key=env.text("KWIT_PAYNOW_SIGNATURE_KEY"),
            paynow_base_url=_http_url(
                "KWIT_PAYNOW_BASE_URL", env.text("KWIT_PAYNOW_BASE_URL", "https://api.paynow.pl")
            ),
            paynow_sync_age=env.integer("KWIT_PAYNOW_SYNC_AGE", 900, minimum=0),
            ifirma_user=env.text("KWIT_IFIRMA_USER"),
            ifirma_invoice_key=_hex_key(
                "KWIT_IFIRMA_INVOICE_KEY", env.text("KWIT_IFIRMA_INVOICE_KEY")
            ),
            ifirma_abonent_key=_hex_key(
                "KWIT_IFIRMA_ABONENT_KEY", env.text("KWIT_IFIRMA_ABONENT_KEY")
            ),
            ifirma_base_url=_http_url(
                "KWIT_IFIRMA_BASE_URL",
                env.text("KWIT_IFIRMA_BASE_URL", "https://www.ifirma.pl/iapi"),
            ),
            ifirma_timeout=ifirma_timeout,
            ksef_enabled=env.boolean("KWIT_KSEF_ENABLED", True),
            retention_profile=env.choice("KWIT_RETENTION_PROFILE", "PL", RETENTION_PROFILES),
            retention_policy_file=env.text("KWIT_RETENTION_POLICY_FILE"),
            income_tax_overlay=env.boolean("KWIT_INCOME_TAX_OVERLAY", True),
            default_vat_rate=env.choice("KWIT_DEFAULT_VAT_RATE", "23", VAT_RATES),
            blob_dir=env.text("KWIT_BLOB_DIR", "var/blobs") or "var/blobs",
            job_lease_seconds=lease,
            sweep_interval=env.number("KWIT_SWEEP_INTERVAL", 30.0, minimum=0.1),
            retention_daily=env.boolean("KWIT_RETENTION_DAILY", False),
            log_level=env.choice("KWIT_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            public_url=env.text("KWIT_PUBLIC_URL"),
            trusted_proxies=env.integer("KWIT_TRUSTED_PROXIES", 0, minimum=0),
            auth_failure_limit=env.integer("KWIT_AUTH_FAILURE_LIMIT", 10, minimum=1),
            auth_failure_window=env.integer("KWIT_AUTH_FAILURE_WINDOW", 300, minimum=1),
        )
        if settings.production:
            settings.require_production_secrets()
        return settings

    def require_production_secrets(self) -> None:
        """Refuse to run in production with a missing secret or the development key."""
        if (
            self.encryption_keys == (DEV_ENCRYPTION_KEY,)
            or DEV_ENCRYPTION_KEY in self.encryption_keys
        ):
            raise ConfigError(
                "KWIT_ENCRYPTION_KEYS", "required in production (Fernet keys, newest first)"
            )
        if not self.ifirma_user:
            raise ConfigError("KWIT_IFIRMA_USER", "required in production")
        if not self.ifirma_invoice_key:
            raise ConfigError("KWIT_IFIRMA_INVOICE_KEY", "required in production")
        has_paynow = bool(self.paynow_api_key or self.paynow_signature_key)
        if has_paynow and not self.paynow_api_key:
            raise ConfigError("KWIT_PAYNOW_API_KEY", "required in production when PayNow is used")
        if has_paynow and not self.paynow_signature_key:
            raise ConfigError(
                "KWIT_PAYNOW_SIGNATURE_KEY", "required in production when PayNow is used"
            )
        if not self.stripe_webhook_secrets and not has_paynow:
            raise ConfigError(
                "KWIT_STRIPE_WEBHOOK_SECRETS",
                "required in production unless PayNow keys are set (no provider configured)",
            )


def _database_url(value: str | None) -> str:
    assert value is not None
    try:
        url = make_url(value)
    except ArgumentError:
        raise ConfigError("KWIT_DATABASE_URL", f"not a database URL: {_redact(value)!r}")
    if url.get_backend_name() not in ("sqlite", "postgresql", "postgres"):
        raise ConfigError("KWIT_DATABASE_URL", "only sqlite:/// and postgresql:// are supported")
    return value


def _redis_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("KWIT_REDIS_URL", "expected redis://host:port/db (or rediss://, unix://)")
    return value


def _http_url(name: str, value: str | None) -> str:
    assert value is not None
    if not value.startswith(("http://", "https://")):
        raise ConfigError(name, f"expected an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _hex_key(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        bytes.fromhex(value)
    except ValueError:
        raise ConfigError(
            name, "expected the hexadecimal key shown in iFirma (e.g. EAB0D8ACF3308F3B)"
        )
    return value


def _fernet_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    for position, key in enumerate(keys, start=1):
        try:
            raw = base64.urlsafe_b64decode(key.encode())
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ConfigError(
                "KWIT_ENCRYPTION_KEYS",
                f"key #{position} is not a Fernet key (generate one with `kwit keys fernet`)",
            )
    return keys


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable>"
