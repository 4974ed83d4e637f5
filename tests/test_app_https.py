"""The tablet app over HTTPS in real headless Chromium, trusting the device's own CA as a tablet that installed
it does: the CA is added to Chromium's NSS store (``certutil``, in a ``HOME`` the test makes) and
``https://localhost:PORT/`` of a device with ``DOGMON_TLS=auto`` is a secure context, installable with no
errors (Chromium's own check), its service worker controls the page after a reload, its WebSocket is wss://
and the screen wake lock is granted. The same Chromium without the CA refuses the page."""

from __future__ import annotations

import os
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.app_page import open_app, wait_online
from tests.conftest import free_port
from tests.test_app_pwa import QUIET_MEDIA
from tests.test_https_e2e import trusting, wait_https

pytestmark = pytest.mark.browser


def home_trusting(home: Path, ca_file: Path | None) -> dict[str, str]:
    """Chromium's environment with ``home`` as HOME, whose NSS store trusts ``ca_file`` for web sites."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True, capture_output=True)
    if ca_file is not None:
        subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "dogmon", "-i", str(ca_file)],
                       check=True, capture_output=True)
        listed = subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-L"], check=True, capture_output=True, text=True)
        assert "dogmon" in listed.stdout, listed.stdout
    return {**os.environ, "HOME": str(home)}


def test_https_with_the_trusted_device_ca_installs_and_keeps_the_screen_on(start_device, tmp_path: Path) -> None:
    setup_port = free_port()
    device = start_device({"DOGMON_SOURCE": "demo", "DOGMON_TLS": "auto", "DOGMON_SETUP_PORT": str(setup_port),
                           **QUIET_MEDIA}, wait=False)
    ca_file = tmp_path / "data" / "tls" / "ca.crt"
    origin = f"https://localhost:{device.port}"
    wait_https(origin + "/healthz", lambda: trusting(ca_file), device)

    # Without the CA, Chromium refuses the device's certificate: the trust below is what makes it work.
    from playwright.sync_api import Error as PlaywrightError

    with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"), \
            open_app(origin, env=home_trusting(tmp_path / "untrusting", None)):
        pass

    env = home_trusting(tmp_path / "home", ca_file)
    with open_app(origin, profile=tmp_path / "profile", env=env) as page:
        wait_online(page)  # /ws/ui over wss://, verified against the same store
        assert page.evaluate("location.protocol") == "https:" and page.evaluate("window.isSecureContext") is True
        assert page.is_hidden("#insecure")
        # the connection message names the setup page (how another tablet trusts the device), and it is there
        connection = next(m for m in page.ui_messages if m["type"] == "connection")["data"]
        assert connection["setup_url"] == f"http://localhost:{setup_port}/setup", connection
        with urllib.request.urlopen(connection["setup_url"], timeout=5) as answer:
            assert "Android" in answer.read().decode()

        cdp = page.context.new_cdp_session(page)
        assert cdp.send("Page.getAppManifest").get("errors") == []
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
        assert errors == [], errors

        # (Playwright's grant denies what it does not list: the wake lock is listed to stay allowed)
        page.context.grant_permissions(["screen-wake-lock"], origin=origin)
        assert page.evaluate("navigator.wakeLock.request('screen').then((l) => l.type)") == "screen"

        page.reload()
        wait_online(page)
        assert page.evaluate("navigator.serviceWorker.controller.scriptURL") == origin + "/sw.js"
        assert page.evaluate("navigator.wakeLock.request('screen').then((l) => l.type)") == "screen"
