"""Settings and the schools file: every error names the setting, never echoes a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumers.settings import ConfigError, Settings, load_schools, load_settings

SCHOOL_YAML = """\
schools:
  - id: {school_id}
    webhook_secrets: ["{secret}"]
    isams:
      base_url: https://demo.isams.cloud
      client_id: sync-client
      client_secret: ${{ISAMS_CLIENT_SECRET}}
    managebac:
      base_url: https://api.managebac.com
      token: ${{MANAGEBAC_TOKEN}}
"""
GOOD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ENVIRON = {"ISAMS_CLIENT_SECRET": "isams-secret-value", "MANAGEBAC_TOKEN": "mb-token-value"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own SYNC_* variables out of these tests."""
    for name in list(Settings.model_fields):
        monkeypatch.delenv(f"SYNC_{name.upper()}", raising=False)


def write_schools(
    tmp_path: Path, school_id: str = "demo-school", secret: str = GOOD_SECRET
) -> Path:
    path = tmp_path / "schools.yaml"
    path.write_text(SCHOOL_YAML.format(school_id=school_id, secret=secret), encoding="utf-8")
    return path


def test_defaults_match_the_design() -> None:
    settings = load_settings()
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.database_url == "sqlite+aiosqlite:///./var/sync.db"
    assert settings.topics.all() == (
        "isams.changes",
        "isams.changes.retry",
        "isams.changes.dlq",
        "isams.changes.bulk",  # first syncs, consumed with lower priority (docs/architecture.md)
    )


def test_topic_prefix_is_prepended_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_KAFKA_TOPIC_PREFIX", "staging.")
    assert load_settings().topics.changes == "staging.isams.changes"


def test_an_unknown_database_driver_names_sync_database_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYNC_DATABASE_URL", "mysql://sync:hunter2-password@db/sync")
    with pytest.raises(ConfigError, match="SYNC_DATABASE_URL") as caught:
        load_settings()
    assert "hunter2-password" not in str(caught.value)


def test_a_short_admin_token_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYNC_ADMIN_TOKEN", "short-tok")
    with pytest.raises(ConfigError, match="SYNC_ADMIN_TOKEN") as caught:
        load_settings()
    assert "short-tok" not in str(caught.value)


def test_a_bad_log_level_names_sync_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_LOG_LEVEL", "chatty")
    with pytest.raises(ConfigError, match="SYNC_LOG_LEVEL"):
        load_settings()


def test_log_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_LOG_LEVEL", "debug")
    assert load_settings().log_level == "DEBUG"


def test_schools_file_expands_variables(tmp_path: Path) -> None:
    schools = load_schools(write_schools(tmp_path), environ=ENVIRON)
    school = schools.by_id()["demo-school"]
    assert school.isams.client_secret.get_secret_value() == "isams-secret-value"
    assert school.managebac.token.get_secret_value() == "mb-token-value"


def test_a_missing_variable_is_named(tmp_path: Path) -> None:
    environ = {"ISAMS_CLIENT_SECRET": "x"}
    with pytest.raises(ConfigError, match="MANAGEBAC_TOKEN is not set"):
        load_schools(write_schools(tmp_path), environ=environ)


@pytest.mark.parametrize("school_id", ["Demo School", "demo_school", "-demo", ""])
def test_a_bad_school_id_is_named(tmp_path: Path, school_id: str) -> None:
    with pytest.raises(ConfigError, match=r"schools\.0\.id"):
        load_schools(write_schools(tmp_path, school_id=f'"{school_id}"'), environ=ENVIRON)


def test_a_secret_without_the_whsec_prefix_is_named_not_shown(tmp_path: Path) -> None:
    path = write_schools(tmp_path, secret="plain-secret-value")
    with pytest.raises(ConfigError, match=r"schools\.0\.webhook_secrets") as caught:
        load_schools(path, environ=ENVIRON)
    assert "plain-secret-value" not in str(caught.value)


def test_repeated_school_ids_are_named(tmp_path: Path) -> None:
    path = write_schools(tmp_path)
    one_school = path.read_text(encoding="utf-8").removeprefix("schools:\n")
    path.write_text("schools:\n" + one_school + one_school, encoding="utf-8")
    with pytest.raises(ConfigError, match="repeated: demo-school"):
        load_schools(path, environ=ENVIRON)


def test_an_unreadable_schools_file_names_sync_schools_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SYNC_SCHOOLS_FILE"):
        load_schools(tmp_path / "absent.yaml", environ=ENVIRON)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "schools.yaml"
    path.write_text("schools: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_schools(path, environ=ENVIRON)


def test_variables_expand_inside_values_only_so_secrets_cannot_break_the_yaml(
    tmp_path: Path,
) -> None:
    path = tmp_path / "schools.yaml"
    path.write_text(
        "# rotate ${NOT_A_SETTING} every term\n"
        "schools:\n"
        "  - id: demo-school\n"
        "    webhook_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]\n"
        "    isams:\n"
        "      base_url: https://demo.isams.cloud\n"
        "      client_id: sync\n"
        "      client_secret: ${TRICKY}\n"
        "    managebac: {base_url: 'https://api.managebac.com', token: t}\n"
    )
    tricky = 'a": b # c\\ d'
    schools = load_schools(path, environ={"TRICKY": tricky})
    assert schools.schools[0].isams.client_secret.get_secret_value() == tricky


def test_sasl_without_its_credentials_names_the_missing_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYNC_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SYNC_KAFKA_SASL_USERNAME", "sync")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    message = str(refused.value)
    assert "SYNC_KAFKA_SASL_MECHANISM" in message
    assert "SYNC_KAFKA_SASL_PASSWORD" in message
    assert "SYNC_KAFKA_SASL_USERNAME" not in message


def test_sasl_ssl_gives_every_kafka_client_tls_and_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import ssl

    from consumers.adapters.kafka.connection import client_options

    monkeypatch.setenv("SYNC_KAFKA_BOOTSTRAP", "kafka-0.kafka:9093")
    monkeypatch.setenv("SYNC_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SYNC_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("SYNC_KAFKA_SASL_USERNAME", "sync")
    monkeypatch.setenv("SYNC_KAFKA_SASL_PASSWORD", "kafka-password-123")
    kafka = load_settings().kafka
    options = client_options(kafka)
    assert options["bootstrap_servers"] == "kafka-0.kafka:9093"
    assert options["security_protocol"] == "SASL_SSL"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_password"] == "kafka-password-123"
    assert "kafka-password-123" not in f"{kafka}"


def test_a_missing_ca_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SYNC_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("SYNC_KAFKA_SSL_CAFILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="SYNC_KAFKA_SSL_CAFILE"):
        load_settings()


def _with_poll_interval(tmp_path: Path, value: str) -> Path:
    path = write_schools(tmp_path)
    text = path.read_text(encoding="utf-8").replace(
        "      client_secret: ${ISAMS_CLIENT_SECRET}\n",
        f"      client_secret: ${{ISAMS_CLIENT_SECRET}}\n      poll_interval_s: {value}\n",
    )
    path.write_text(text, encoding="utf-8")
    return path


def test_poll_interval_defaults_to_webhooks_only(tmp_path: Path) -> None:
    isams = load_schools(write_schools(tmp_path), environ=ENVIRON).schools[0].isams
    assert isams.poll_interval_s == 0
    assert not isams.polled


@pytest.mark.parametrize(("value", "seconds"), [("60", 60.0), ("1", 1.0), ("86400", 86400.0)])
def test_a_poll_interval_in_seconds_is_taken(tmp_path: Path, value: str, seconds: float) -> None:
    isams = load_schools(_with_poll_interval(tmp_path, value), environ=ENVIRON).schools[0].isams
    assert isams.poll_interval_s == seconds
    assert isams.polled


@pytest.mark.parametrize("value", ["-1", "0.5", "86401", ".inf", ".nan", "soon"])
def test_a_bad_poll_interval_is_named(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"schools\.0\.isams\.poll_interval_s"):
        load_schools(_with_poll_interval(tmp_path, value), environ=ENVIRON)


def write_mappings(tmp_path: Path, mappings: str) -> Path:
    path = write_schools(tmp_path)
    path.write_text(path.read_text(encoding="utf-8") + "    mappings:\n" + mappings, "utf-8")
    return path


def test_grades_map_nc_years_to_grade_codes(tmp_path: Path) -> None:
    path = write_mappings(
        tmp_path, '      grades: {7: "myp;8", 12: diploma;12, 13: " secondary;13"}\n'
    )

    mappings = load_schools(path, environ=ENVIRON).school("demo-school").mappings

    assert mappings.grades == {7: "myp;8", 12: "diploma;12", 13: "secondary;13"}
    assert mappings.year_groups == {}
    assert {year: str(code) for year, code in mappings.grade_codes().items()} == mappings.grades


@pytest.mark.parametrize("code", ["myp", "myp;", ";8", "myp;eight", "myp 8"])
def test_a_grade_code_of_another_shape_is_named_with_its_year(tmp_path: Path, code: str) -> None:
    path = write_mappings(tmp_path, f'      grades: {{7: "myp;8", 9: "{code}"}}\n')

    with pytest.raises(ConfigError, match=r"schools\.0\.mappings\.grades") as refused:
        load_schools(path, environ=ENVIRON)

    assert "NC year(s) 9:" in str(refused.value)
    assert "<program code>;<grade number>" in str(refused.value)


def test_grades_and_year_groups_together_are_refused_naming_both(tmp_path: Path) -> None:
    path = write_mappings(
        tmp_path, '      grades: {7: "myp;8"}\n      year_groups: {7: 10209272}\n'
    )

    with pytest.raises(ConfigError) as refused:
        load_schools(path, environ=ENVIRON)

    message = str(refused.value)
    assert "mappings.grades" in message
    assert "mappings.year_groups" in message
    assert "demo-school" in message


def test_fixed_year_groups_keep_working_without_grades(tmp_path: Path) -> None:
    path = write_mappings(tmp_path, "      year_groups: {7: 10209272, 8: 10209273}\n")

    mappings = load_schools(path, environ=ENVIRON).school("demo-school").mappings

    assert mappings.year_groups == {7: 10209272, 8: 10209273}
    assert mappings.grades == {}
    assert mappings.grade_codes() == {}
