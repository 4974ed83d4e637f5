"""A full data disk loses nothing silently: no seq that is not in the log, a counted spell, storing again soon.

The bus tests use a real SQLite refusal (``PRAGMA max_page_count``: "database or disk is full"); the device test
runs the device in its own mount namespace with a small tmpfs as its data dir, filled to the brim by a file the
test writes (and later removes) through ``/proc/PID/root``.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from edge.core.bus import Bus, stored_seq
from edge.core.commands import CommandError
from edge.core.store import EventStore
from edge.protocol import messages
from edge.protocol.messages import EventType, Message
from tests.helpers import events, ws_collect, ws_connect
from tests.media import compose_video

BLOB = "x" * 4000  # wider than a page: every event needs new pages


class Seen:
    """A transport that keeps what the bus handed it."""

    def __init__(self) -> None:
        self.got: list[tuple[Message, dict[str, Any]]] = []

    def deliver(self, message: Message, payload: bytes) -> None:
        self.got.append((message, orjson.loads(payload)))


def full(store: EventStore) -> None:
    """No new page for the database (the free bytes left in its pages still take small rows)."""
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")


@pytest.mark.unit
def test_an_event_that_cannot_be_stored_has_no_seq_and_the_spell_is_stored_once_there_is_room(tmp_path: Path) -> None:
    async def run() -> None:
        store = EventStore(tmp_path)
        bus = Bus("dog", store, asyncio.get_running_loop())
        seen = Seen()
        bus.attach(seen)
        bus.publish(messages.event(EventType.TEST, {"n": 0}))
        full(store)
        answers: list[int | str] = []
        for n in range(1, 21):
            event = messages.event(EventType.TEST, {"n": n, "blob": BLOB})
            bus.publish(event)
            try:
                answers.append(stored_seq(event, "the test event"))
            except CommandError as exc:
                answers.append(exc.code)
        await asyncio.sleep(0)  # the spell's live error event
        refused = answers.count("storage_full")
        assert refused >= 15 and bus.store_failing, answers
        stored = [seq for seq, _ in store.events(0)]
        assert [a for a in answers if isinstance(a, int)] == stored[1:]  # every seq given is in the log
        live = [payload for message, payload in seen.got if message.is_event]
        assert [p["data"]["n"] for p in live if p["event_type"] == "test"] == list(range(21))  # all went out live
        assert all("seq" not in p for p in live if p["event_type"] == "test" and p["data"]["n"] > len(stored) - 1)
        started = [p for p in live if p["event_type"] == "error"]
        assert len(started) == 1 and "seq" not in started[0] and started[0]["data"]["component"] == "store"

        store.db.execute("PRAGMA query_only = 1")  # no write at all gets through
        assert not bus.retry_store()  # still failing: nothing stored, nothing published
        assert len(seen.got) == len(live) and bus.store_failing
        store.db.execute("PRAGMA query_only = 0")
        store.db.execute("PRAGMA max_page_count = 1000000")  # room again
        assert bus.retry_store() and not bus.store_failing
        closing = seen.got[-1][1]
        assert closing["event_type"] == "error" and closing["seq"] == stored[-1] + 1
        assert closing["data"]["unstored"] == refused
        after = messages.event(EventType.TEST, {"n": 21})
        bus.publish(after)
        assert stored_seq(after, "the test event") == closing["seq"] + 1
        seqs = [seq for seq, _ in store.events(0)]
        assert seqs == list(range(1, len(seqs) + 1))  # gap-free
        store.close()

    asyncio.run(run())


@pytest.mark.unit
def test_a_spell_is_one_spell_even_when_small_events_would_still_fit(tmp_path: Path) -> None:
    async def run() -> None:
        store = EventStore(tmp_path)
        bus = Bus("dog", store, asyncio.get_running_loop())
        seen = Seen()
        bus.attach(seen)
        full(store)
        for n in range(10):  # big and small events alternate on a disk with a few free bytes in its pages
            bus.publish(messages.event(EventType.TEST, {"n": n, "blob": BLOB if n % 2 == 0 else ""}))
        await asyncio.sleep(0)
        tests = [p for m, p in seen.got if p.get("event_type") == "test"]
        assert all("seq" not in p for p in tests)  # nothing after the first failure is tried until the retry
        assert len([p for m, p in seen.got if p.get("event_type") == "error"]) == 1
        assert bus.retry_store()  # the small closing event fits: the spell ends, events are stored again
        event = messages.event(EventType.TEST, {"n": 10})
        bus.publish(event)
        kinds = [orjson.loads(p)["event_type"] for _, p in store.events(0)]
        assert kinds == ["error", "test"] and event.seq == store.last_seq == 2
        store.close()

    asyncio.run(run())


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, orjson.dumps(body), {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def fill(path: Path) -> None:
    """Write ``path`` until the file system has no byte left."""
    with path.open("wb", buffering=0) as out:
        size = 65536
        while size:
            try:
                out.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                size //= 2
    assert os.statvfs(path.parent).f_bavail == 0


def reply_to(msgs: list[dict], request_id: Any) -> dict | None:
    return next((m for m in msgs if m["type"] in ("reply", "error") and m["data"].get("id") == request_id), None)


@pytest.mark.e2e
def test_a_data_disk_filled_to_the_brim_acknowledges_only_stored_events_and_stores_again_once_freed(
        start_device, tmp_path: Path) -> None:
    data = tmp_path / "small-disk"
    data.mkdir()
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed to give the device a small private disk"
    mount_then_run = ["sh", "-c", f'mount -t tmpfs -o size=4m tmpfs "{data}" && exec "$0" "$@"']
    wrapper = [unshare, "--mount"] if os.geteuid() == 0 else [unshare, "--map-root-user", "--mount"]
    room = compose_video(tmp_path / "room.mp4", [(None, 4.0)])
    device = start_device({"DOGMON_TEST_EVENTS": "1", "DOGMON_WS_RATE": "1000", "DOGMON_SOURCE": str(room),
                           "DOGMON_DATA_DIR": str(data), "DOGMON_SNAPSHOT_EVENTS": "", "DOGMON_CLIP_EVENTS": "",
                           "DOGMON_ANALYTICS_INTERVAL": "0.5"},
                          wrapper=[*wrapper, *mount_then_run])
    filler = Path(f"/proc/{device.proc.pid}/root") / str(data).lstrip("/") / "filler"  # the device's own disk
    acknowledged: list[int] = []
    refused = 0
    with ws_connect(device.ws_url) as ws:
        got = ws_collect(ws, lambda m: any(x["type"] == "connection" for x in m), 10)
        first_seq = next(x for x in got if x["type"] == "connection")["data"]["last_seq"]

        def emit(request_id: Any, blob: str = "") -> dict:
            ws.send(orjson.dumps({"type": "emit_test_event", "id": request_id, "data": {"blob": blob}}))
            return reply_to(ws_collect(ws, lambda m: reply_to(m, request_id) is not None, 10, into=got), request_id)

        for n in range(3):
            acknowledged.append(emit(f"before{n}")["data"]["seq"])
        fill(filler)
        for n in range(40):  # what still fits in SQLite's free pages is stored; then nothing is
            answer = emit(n, "x" * 8000)
            if answer["type"] == "reply":
                acknowledged.append(answer["data"]["seq"])
            else:
                assert answer["data"]["code"] == "storage_full", answer
                refused += 1
        assert refused >= 20, (refused, acknowledged)
        status, bookmark = post(device.http_url + "/api/bookmark", {"label": "on a full disk"})
        assert status == 507 and bookmark["error"]["code"] == "storage_full", (status, bookmark)
        unstored_live = [e for e in events(got, "test") if "seq" not in e]
        assert len(unstored_live) >= refused  # they still went out live, without a seq
        health = orjson.loads(urllib.request.urlopen(device.http_url + "/healthz", timeout=5).read())
        assert "event log not writable" in health["problems"], health
        time.sleep(1.5)  # analytics try to save a few times meanwhile

        filler.unlink()
        freed = time.monotonic()
        n = 0
        while True:  # a new event is stored again within 5 s of space returning
            answer = emit(f"after{n}")
            if answer["type"] == "reply":
                acknowledged.append(answer["data"]["seq"])
                break
            n += 1
            assert time.monotonic() - freed < 5, answer
            time.sleep(0.3)
        stored_again = time.monotonic() - freed
    health = orjson.loads(urllib.request.urlopen(device.http_url + "/healthz", timeout=5).read())
    assert "event log not writable" not in health["problems"], health

    # A client resuming from before the spell gets every stored event in order, every acknowledged seq among
    # them, and the event that counts what was not stored.
    with ws_connect(device.ws_url + f"?since={first_seq}") as ws:
        got = ws_collect(ws, lambda m: any(e.get("seq") == acknowledged[-1] for e in events(m)), 15)
    replayed = [e["seq"] for e in events(got)]
    gaps = [m for m in got if m["type"] == "gap"]
    assert replayed == list(range(first_seq + 1, acknowledged[-1] + 1)) and not gaps, (replayed, gaps)
    assert set(acknowledged) <= set(replayed)
    closing = [e for e in events(got, "error") if e["data"].get("unstored")]
    assert len(closing) == 1 and closing[0]["data"]["unstored"] >= refused + 1, closing  # + the bookmark
    assert stored_again < 5 and device.proc.poll() is None
    deadline = time.monotonic() + 15  # analytics are saved every few seconds: the next save after space returned
    while "analytics saved again" not in device.logs() and time.monotonic() < deadline:
        time.sleep(0.5)
    logs = device.logs()  # one line per spell and part, no traceback loop
    assert "Traceback" not in logs and logs.count("event log write failed") == 1, logs
    assert logs.count("analytics not saved") == 1 and "analytics saved again" in logs, logs


@pytest.mark.unit
def test_media_disk_full_is_one_report_per_spell_and_clears_at_the_first_check_with_room(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from edge.media.health import MediaHealth

    published: list[Message] = []
    health = MediaHealth(published.append, lambda: None, tmp_path, reserve=2**62)  # more than any disk has
    for _ in range(5):
        health.failed("snapshot", OSError(errno.ENOSPC, "No space left on device"), None)
    assert health.problems() == ["media disk full"]
    assert len(published) == 1 and len([r for r in caplog.records if r.levelname == "ERROR"]) == 1
    health.reserve = 0  # the disk has room again: the next /healthz check says so, before any save
    assert health.problems() == [] and not health.disk_full
