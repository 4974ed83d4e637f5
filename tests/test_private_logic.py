"""The pure parts of private-by-default: origins and hosts, pairing codes, sessions, the made token."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from edge.web import pairing
from edge.web.netnames import interface_addresses, reach
from edge.web.origins import DeviceNames, host_names, split_host
from edge.web.pairing import Pairing, device_token, local_token
from edge.web.sessions import SessionStore

pytestmark = pytest.mark.unit


def test_split_host_reads_names_addresses_and_bracketed_v6() -> None:
    assert split_host("Dog.Local:8765") == ("dog.local", 8765)
    assert split_host("[::1]:8765") == ("::1", 8765)
    assert split_host("192.168.1.5") == ("192.168.1.5", None)
    assert split_host("::1") == ("::1", None)


def test_own_origins_are_scheme_host_and_port_and_extras() -> None:
    names = DeviceNames("127.0.0.1", lambda: 8765, ["https://Dog.Example.org/"])
    assert names.origin_ok("http://127.0.0.1:8765") and names.origin_ok("http://localhost:8765")
    assert names.origin_ok("http://[::1]:8765") and names.origin_ok("https://dog.example.org")
    for foreign in ("http://127.0.0.1:8766", "https://127.0.0.1:8765", "http://evil.example:8765", "null",
                    "http://127.0.0.1", "http://127.0.0.1:8765/path"):
        assert not names.origin_ok(foreign), foreign
    assert names.host_ok("localhost:8765") and names.host_ok("dog.example.org")
    assert not names.host_ok("evil.example") and not names.host_ok("") and not names.host_ok(None)
    assert names.urls() == ["http://127.0.0.1:8765/"]


def test_a_wildcard_bind_answers_to_its_host_name_and_lists_it_first() -> None:
    names = DeviceNames("0.0.0.0", lambda: 8765)
    local = next(n for n in host_names() if n.endswith(".local"))
    assert names.host_ok(f"{local}:8765") and names.origin_ok(f"http://{local}:8765")
    assert names.urls()[0] == f"http://{local}:8765/"


def test_a_wildcard_bind_accepts_and_lists_the_addresses_the_one_lister_reads() -> None:
    # Host checks, printed URLs and the certificate/mDNS addresses (``reach``) are one reading of the interfaces.
    every = interface_addresses(include_link_local=True)
    lan = interface_addresses(include_loopback=False)
    if not lan:
        pytest.skip("this machine has no non-loopback interface address")
    assert len(every) == len(set(every)) and not any("%" in str(a) for a in every)
    assert not any(a.is_loopback or (a.version == 6 and a.is_link_local) for a in lan)
    names = DeviceNames("0.0.0.0", lambda: 8765)
    for address in every:
        host = f"[{address}]" if address.version == 6 else str(address)
        assert names.host_ok(f"{host}:8765") and names.origin_ok(f"http://{host}:8765"), host
    shown = [f"http://{f'[{a}]' if a.version == 6 else a}:8765/" for a in lan]
    assert names.urls()[1:] == shown  # after NAME.local: the LAN addresses, v6 bracketed, no loopback/link-local
    assert reach("0.0.0.0").lan_addresses() == lan and reach("0.0.0.0").urls("http", 8765)[1:] == shown


def test_a_pairing_code_works_once_expires_and_dies_after_too_many_guesses(tmp_path: Path) -> None:
    now = [1000.0]
    codes = Pairing(tmp_path, ttl=600, clock=lambda: now[0])
    code = codes.issue()
    assert len(code.code) == 8 and set(code.code) <= set(pairing.ALPHABET)
    assert stat.S_IMODE((tmp_path / pairing.CODE_FILE).stat().st_mode) == 0o600
    assert codes.looks_like_code(pairing.pretty(code.code).lower()) and not codes.looks_like_code("hunter2")
    assert not codes.redeem("AAAAAAAA") and codes.redeem(pairing.pretty(code.code).lower())
    assert not codes.redeem(code.code)  # once
    code = codes.issue()
    now[0] += 601
    assert not codes.redeem(code.code)  # expired
    code = codes.issue()
    for _ in range(pairing.MAX_WRONG):
        codes.redeem("AAAAAAAA" if code.code != "AAAAAAAA" else "BBBBBBBB")
    assert not codes.redeem(code.code)  # voided by guessing


def test_sessions_persist_expire_end_and_die_with_the_token(tmp_path: Path) -> None:
    now = [1000.0]
    path = tmp_path / "sessions.json"
    store = SessionStore(path, "token-one-0123456789", max_age=100, clock=lambda: now[0])
    first, second = store.open(), store.open()
    assert first != second and store.valid(first) and first not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = SessionStore(path, "token-one-0123456789", max_age=100, clock=lambda: now[0])
    assert again.valid(first) and again.valid(second)
    assert again.end(first) and not again.valid(first) and again.valid(second)
    assert not SessionStore(path, "token-two-0123456789", clock=lambda: now[0]).valid(second)
    now[0] += 101
    assert not again.valid(second)
    third = again.open()
    assert again.end_all() == 1 and not again.valid(third)


def test_the_made_token_is_long_private_and_kept(tmp_path: Path) -> None:
    token = device_token("", tmp_path)
    assert len(token) >= 32 and stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
    assert device_token("", tmp_path) == token == local_token("", tmp_path)
    assert device_token("open", tmp_path) == "" == local_token("open", tmp_path)
    assert device_token("configured-0123456789", tmp_path) == "configured-0123456789"


def test_only_an_answer_to_an_explicit_token_may_be_embedded_by_another_origin() -> None:
    from edge.web.gate import security_headers

    assert security_headers("pi.local:8765")["Cross-Origin-Resource-Policy"] == "same-origin"  # cookie, or none
    assert security_headers("pi.local:8765", explicit_credential=True)["Cross-Origin-Resource-Policy"] == "cross-origin"
