"""Settings.from_env: every variable, *_FILE variants, readable errors, production refusal."""

from pathlib import Path

import pytest

from service.config import DEV_ENCRYPTION_KEY, ConfigError, Settings

FERNET = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdC0="


def production_env(**extra: str) -> dict[str, str]:
    env = {
        "KWIT_ENV": "production",
        "KWIT_ENCRYPTION_KEYS": FERNET,
        "KWIT_IFIRMA_USER": "seller@example.pl",
        "KWIT_IFIRMA_INVOICE_KEY": "EAB0D8ACF3308F3B",
        "KWIT_STRIPE_WEBHOOK_SECRETS": "whsec_a",
    }
    env.update(extra)
    return env


def test_defaults_need_no_configuration() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite:///kwit.db"
    assert settings.redis_url is None
    assert settings.retention_profile == "PL"
    assert settings.default_vat_rate == "23"
    assert settings.encryption_keys == (DEV_ENCRYPTION_KEY,)


def test_every_design_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "KWIT_DATABASE_URL": "postgresql://u@db/kwit",
            "KWIT_REDIS_URL": "redis://cache:6379/2",
            "KWIT_ENCRYPTION_KEYS": f"{FERNET}, {FERNET}",
            "KWIT_STRIPE_WEBHOOK_SECRETS": "whsec_new,whsec_old",
            "KWIT_PAYNOW_API_KEY": "ak",
            "KWIT_PAYNOW_SIGNATURE_KEY": "sk",
            "KWIT_PAYNOW_BASE_URL": "https://api.sandbox.paynow.pl/",
            "KWIT_IFIRMA_USER": "seller@example.pl",
            "KWIT_IFIRMA_INVOICE_KEY": "EAB0D8ACF3308F3B",
            "KWIT_IFIRMA_BASE_URL": "http://127.0.0.1:8085/iapi",
            "KWIT_RETENTION_PROFILE": "DE",
            "KWIT_DEFAULT_VAT_RATE": "8",
            "KWIT_BLOB_DIR": "/srv/kwit/blobs",
        }
    )
    assert settings.database_url == "postgresql://u@db/kwit"
    assert settings.redis_url == "redis://cache:6379/2"
    assert settings.encryption_keys == (FERNET, FERNET)
    assert settings.stripe_webhook_secrets == ("whsec_new", "whsec_old")
    assert (settings.paynow_api_key, settings.paynow_signature_key) == ("ak", "sk")
    assert settings.paynow_base_url == "https://api.sandbox.paynow.pl"
    assert settings.ifirma_user == "seller@example.pl"
    assert settings.ifirma_invoice_key == "EAB0D8ACF3308F3B"
    assert settings.ifirma_base_url == "http://127.0.0.1:8085/iapi"
    assert settings.retention_profile == "DE"
    assert settings.default_vat_rate == "8"
    assert settings.blob_dir == "/srv/kwit/blobs"


def test_file_variants_read_secrets_from_files(tmp_path: Path) -> None:
    secret_file = tmp_path / "stripe"
    secret_file.write_text("whsec_from_file\n")
    key_file = tmp_path / "fernet"
    key_file.write_text(FERNET)
    settings = Settings.from_env(
        {
            "KWIT_STRIPE_WEBHOOK_SECRETS_FILE": str(secret_file),
            "KWIT_ENCRYPTION_KEYS_FILE": str(key_file),
        }
    )
    assert settings.stripe_webhook_secrets == ("whsec_from_file",)
    assert settings.encryption_keys == (FERNET,)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"KWIT_DATABASE_URL": "mysql://x/y"}, "KWIT_DATABASE_URL"),
        ({"KWIT_DATABASE_URL": "::not a url::"}, "KWIT_DATABASE_URL"),
        ({"KWIT_REDIS_URL": "localhost:6379"}, "KWIT_REDIS_URL"),
        ({"KWIT_ENCRYPTION_KEYS": "short"}, "KWIT_ENCRYPTION_KEYS"),
        ({"KWIT_IFIRMA_INVOICE_KEY": "not-hex"}, "KWIT_IFIRMA_INVOICE_KEY"),
        ({"KWIT_DEFAULT_VAT_RATE": "22"}, "KWIT_DEFAULT_VAT_RATE"),
        ({"KWIT_RETENTION_PROFILE": "FR"}, "KWIT_RETENTION_PROFILE"),
        ({"KWIT_STRIPE_TOLERANCE": "five"}, "KWIT_STRIPE_TOLERANCE"),
        ({"KWIT_STRIPE_LIVEMODE": "maybe"}, "KWIT_STRIPE_LIVEMODE"),
        ({"KWIT_IFIRMA_BASE_URL": "ftp://x"}, "KWIT_IFIRMA_BASE_URL"),
        ({"KWIT_ENV": "staging"}, "KWIT_ENV"),
        ({"KWIT_JOB_LEASE_SECONDS": "30", "KWIT_IFIRMA_TIMEOUT": "60"}, "KWIT_JOB_LEASE_SECONDS"),
        ({"KWIT_PAYNOW_API_KEY": "a", "KWIT_PAYNOW_API_KEY_FILE": "/x"}, "KWIT_PAYNOW_API_KEY"),
        ({"KWIT_PAYNOW_API_KEY_FILE": "/nonexistent/secret"}, "KWIT_PAYNOW_API_KEY_FILE"),
    ],
)
def test_bad_configuration_names_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")


def test_production_starts_with_all_secrets() -> None:
    assert Settings.from_env(production_env()).production


@pytest.mark.parametrize(
    ("missing", "variable"),
    [
        ("KWIT_ENCRYPTION_KEYS", "KWIT_ENCRYPTION_KEYS"),
        ("KWIT_IFIRMA_USER", "KWIT_IFIRMA_USER"),
        ("KWIT_IFIRMA_INVOICE_KEY", "KWIT_IFIRMA_INVOICE_KEY"),
        ("KWIT_STRIPE_WEBHOOK_SECRETS", "KWIT_STRIPE_WEBHOOK_SECRETS"),
    ],
)
def test_production_refuses_a_missing_secret(missing: str, variable: str) -> None:
    env = production_env()
    del env[missing]
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert caught.value.variable == variable


def test_production_refuses_half_configured_paynow() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(production_env(KWIT_PAYNOW_API_KEY="ak"))
    assert caught.value.variable == "KWIT_PAYNOW_SIGNATURE_KEY"


def test_production_refuses_the_development_key() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(production_env(KWIT_ENCRYPTION_KEYS=DEV_ENCRYPTION_KEY))
    assert caught.value.variable == "KWIT_ENCRYPTION_KEYS"
