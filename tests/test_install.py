"""The systemd unit and the installer: `systemd-analyze verify`/`security` on the real unit file, and
install.sh's steps in --dry-run (the test machine is not a Pi, and a real install changes the system)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "dogmonitor.service"
INSTALL = REPO / "scripts" / "install.sh"


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze is not installed (apt-get install systemd)", pytrace=False)
    return found


def unit_with_existing_exec(tmp_path: Path) -> Path:
    """The unit as shipped, except ExecStart points at an executable that exists on this machine
    (verify refuses a missing binary; /opt/dogmonitor exists only after install.sh)."""
    text = UNIT.read_text().replace("/opt/dogmonitor/venv/bin/dogmonitor", str(Path(sys.executable).resolve()))
    path = tmp_path / "dogmonitor.service"
    path.write_text(text)
    return path


@pytest.mark.unit
def test_unit_declares_notify_watchdog_restart_and_hardening() -> None:
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=60", "Restart=on-failure", "EnvironmentFile=/etc/dogmonitor/device.env",
                 "User=dogmonitor", "SupplementaryGroups=video audio", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "ReadWritePaths=/var/lib/dogmonitor", "ProtectHome=yes", "PrivateTmp=yes",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "MemoryMax="):
        assert re.search(rf"^{re.escape(line)}", text, re.M), line


@pytest.mark.e2e
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    done = subprocess.run([systemd_analyze(), "verify", str(unit_with_existing_exec(tmp_path))],
                          capture_output=True, text=True, timeout=30)
    # verify exits 0 even for unknown keys; any line it prints is a finding
    assert done.returncode == 0 and done.stdout.strip() == "" and done.stderr.strip() == "", done.stderr
    broken = tmp_path / "broken.service"
    broken.write_text(unit_with_existing_exec(tmp_path).read_text().replace("WatchdogSec=60", "WatchdogSecs=60"))
    found = subprocess.run([systemd_analyze(), "verify", str(broken)], capture_output=True, text=True, timeout=30)
    assert "WatchdogSecs" in found.stderr  # the check does catch a typo


@pytest.mark.e2e
def test_unit_exposure_is_low(tmp_path: Path) -> None:
    done = subprocess.run([systemd_analyze(), "security", "--offline=yes", str(unit_with_existing_exec(tmp_path))],
                          capture_output=True, text=True, timeout=30)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert match, done.stdout[-500:] + done.stderr
    assert float(match.group(1)) <= 2.0, match.group(0)  # README reports the figure (1.8 with systemd 252)


def dry_run(*args: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, **env}
    return subprocess.run(["bash", str(INSTALL), *args], capture_output=True, text=True, env=full, timeout=30)


def commands(output: str) -> list[str]:
    return [line[2:] for line in output.splitlines() if line.startswith("+ ")]


@pytest.mark.unit
def test_install_dry_run_prints_every_step_in_order_and_changes_nothing(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    done = dry_run("--dry-run", "--with-mosquitto", DOGMON_ETC_DIR=str(etc), DOGMON_PREFIX=str(tmp_path / "opt"))
    assert done.returncode == 0, done.stderr
    steps = [line[4:] for line in done.stdout.splitlines() if line.startswith("==> ")]
    assert [s.split()[0] for s in steps] == ["system", "service", "program:", "local", "data", "configuration",
                                            "models:", "systemd", "done"]
    cmds = commands(done.stdout)
    assert any(c.startswith("env DEBIAN_FRONTEND=noninteractive apt-get install") and "mosquitto" in c for c in cmds)
    assert any(c.startswith("useradd --system") and "video,audio" in c for c in cmds) or "exists: user" in done.stdout
    assert any(c.endswith(f"-m venv {tmp_path}/opt/venv") for c in cmds)
    assert any("fetch-models" in c for c in cmds)
    assert f"create {etc}/device.env" in done.stdout and "a new DOGMON_WS_TOKEN" in done.stdout
    assert cmds[-2:] == ["systemctl enable dogmonitor.service", "systemctl restart dogmonitor.service"]
    assert not etc.exists() and not (tmp_path / "opt").exists()


@pytest.mark.unit
def test_install_keeps_an_existing_device_env(tmp_path: Path) -> None:
    (tmp_path / "device.env").write_text("DOGMON_DEVICE_ID=kitchen\n")
    done = dry_run("--dry-run", DOGMON_ETC_DIR=str(tmp_path))
    assert done.returncode == 0
    assert f"kept: {tmp_path}/device.env (never overwritten" in done.stdout
    assert "create " not in done.stdout
    assert (tmp_path / "device.env").read_text() == "DOGMON_DEVICE_ID=kitchen\n"


@pytest.mark.unit
def test_uninstall_keeps_data_unless_purged(tmp_path: Path) -> None:
    keep = dry_run("--dry-run", "--uninstall")
    assert keep.returncode == 0
    assert "rm -rf /opt/dogmonitor" in commands(keep.stdout)
    assert not any("/var/lib/dogmonitor" in c or "/etc/dogmonitor" in c for c in commands(keep.stdout))
    assert "kept: /etc/dogmonitor (configuration) and /var/lib/dogmonitor" in keep.stdout
    purge = dry_run("--dry-run", "--uninstall", "--purge")
    assert "rm -rf /etc/dogmonitor /var/lib/dogmonitor" in commands(purge.stdout)
    assert "userdel dogmonitor" in commands(purge.stdout)


@pytest.mark.unit
def test_install_refuses_unknown_or_contradictory_options() -> None:
    bad = dry_run("--frobnicate")
    assert bad.returncode == 2 and "unknown option '--frobnicate'" in bad.stderr and "--dry-run" in bad.stderr
    assert dry_run("--purge").returncode == 2
    assert dry_run("--uninstall", "--with-mosquitto").returncode == 2
    assert dry_run("--help").returncode == 0
