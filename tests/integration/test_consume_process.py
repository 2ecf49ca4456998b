"""`isams-sync consume` as a real process: health port, readiness, clean SIGTERM, config errors."""

from __future__ import annotations

import base64
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from consumers.settings import Topics
from sim.serving import free_port
from sim.stack import ManagedProcess, sync_command, wait_ready

SECRET = "whsec_" + base64.b64encode(b"consume-process-test-secret-32b!").decode()


def _schools_file(tmp_path: Path) -> Path:
    path = tmp_path / "schools.yaml"
    school = {
        "id": "proc-school",
        "webhook_secrets": [SECRET],
        "isams": {"base_url": "http://127.0.0.1:9", "client_id": "c", "client_secret": "s"},
        "managebac": {"base_url": "http://127.0.0.1:9", "token": "${PROC_TOKEN}"},
    }
    path.write_text(yaml.safe_dump({"schools": [school]}))
    return path


def _env(tmp_path: Path, bootstrap: str, prefix: str) -> dict[str, str]:
    return {
        "SYNC_KAFKA_BOOTSTRAP": bootstrap,
        "SYNC_KAFKA_TOPIC_PREFIX": prefix,
        "SYNC_CONSUMER_GROUP": f"group-{prefix}",
        "SYNC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        "SYNC_SCHOOLS_FILE": str(_schools_file(tmp_path)),
        "PROC_TOKEN": "token-from-the-environment",
    }


def _consume(tmp_path: Path, env: dict[str, str], port: int) -> ManagedProcess:
    return ManagedProcess(
        "consume",
        sync_command("consume", "--health-port", str(port), "--health-host", "127.0.0.1"),
        tmp_path / "consume.log",
        env,
    )


@pytest.mark.kafka
async def test_consume_serves_health_and_exits_zero_on_sigterm(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    port = free_port()
    prefix = topics.changes.removesuffix("isams.changes")
    process = _consume(tmp_path, _env(tmp_path, kafka_bootstrap, prefix), port)
    process.start()
    try:
        await wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).status_code == 200
            metrics = await http.get("/metrics")
            assert metrics.status_code == 200
            assert "isams_sync_changes_processed_total" in metrics.text
            assert "isams_sync_end_to_end_seconds" in metrics.text
        assert process.process is not None
        process.process.send_signal(signal.SIGTERM)
        assert process.process.wait(30) == 0, process.log_tail()
        assert "consumer stopped cleanly" in process.log_tail(50)
    finally:
        process.stop()


async def test_consume_without_kafka_is_alive_but_not_ready(tmp_path: Path) -> None:
    port = free_port()
    closed = f"127.0.0.1:{free_port()}"
    process = _consume(tmp_path, _env(tmp_path, closed, "none."), port)
    process.start()
    try:
        await wait_ready(f"http://127.0.0.1:{port}/healthz", process)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert "kafka" in ready.json()["failed"]
        assert "ledger" not in ready.json()["failed"]
        assert process.process is not None
        process.process.send_signal(signal.SIGTERM)
        assert process.process.wait(30) == 0, process.log_tail()
    finally:
        process.stop()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"SYNC_DATABASE_URL": "mysql://nope"}, "SYNC_DATABASE_URL"),
        ({"SYNC_LOG_LEVEL": "LOUD"}, "SYNC_LOG_LEVEL"),
        ({"SYNC_SCHOOLS_FILE": "/nonexistent/schools.yaml"}, "SYNC_SCHOOLS_FILE"),
        ({"PROC_TOKEN": None}, "PROC_TOKEN"),
    ],
)
def test_a_bad_setting_stops_start_up_naming_it(
    tmp_path: Path, overrides: dict[str, str | None], named: str
) -> None:
    env = {**_env(tmp_path, "127.0.0.1:9", "x."), **overrides}
    clean = {key: value for key, value in env.items() if value is not None}
    result = subprocess.run(  # noqa: S603  (our own command)
        sync_command("consume", "--health-port", str(free_port())),
        env={"PATH": "/usr/bin:/bin", **clean},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert named in result.stderr
    assert "token-from-the-environment" not in result.stderr


@pytest.mark.kafka
async def test_consume_waits_for_an_unreachable_database_instead_of_exiting(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = free_port()
    env = _env(tmp_path, kafka_bootstrap, "nodb.")
    env["SYNC_DATABASE_URL"] = f"postgresql+asyncpg://sync:pw@127.0.0.1:{free_port()}/ledger"
    process = _consume(tmp_path, env, port)
    process.start()
    try:
        await wait_ready(f"http://127.0.0.1:{port}/healthz", process)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["failed"] == ["ledger"]
        assert process.alive()
        assert process.process is not None
        process.process.send_signal(signal.SIGTERM)
        assert process.process.wait(30) == 0, process.log_tail()
    finally:
        process.stop()
