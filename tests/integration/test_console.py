"""The web console at ``/console`` over HTTP: who may see it, the message list and its paging, a message's
detail (request, slides, timeline, postback attempts, carrier ids), templates, the virtual phones (inbox,
settings, sending an MMS back: N401) and the test send with an uploaded file.

The gateway runs in process over a real store (SQLite and PostgreSQL) with its real workers
(``running_gateway``); postbacks go to a real loopback receiver.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import lxml.html
import msgspec
import pytest
from click.testing import CliRunner

from mmsgate.app import create_app
from mmsgate.cli import main
from mmsgate.config import Settings
from mmsgate.core.codes import MessageState
from mmsgate.core.model import Message, Sending, Slide, utcnow
from mmsgate.core.records import Behaviour, ConsoleUpload, Handset, MessageQuery, upload_token_hash
from mmsgate.store import Store
from mmsgate.store.sql.console import messages_page_query
from mmsgate.web.console.auth import ensure_password, set_password, token_hash
from tests import media_samples as samples
from tests.conftest import Caller, provision
from tests.integration.media_origin import file_reply
from tests.integration.test_delivery import Gateway, gateway_settings, running_gateway
from tests.waiting import eventually

PASSWORD = "correct horse battery staple"
PAGES = [
    "/console/messages",
    "/console/messages/some-tracking-id",
    "/console/phones",
    "/console/phones/15550100001",
    "/console/send",
    "/console/templates",
    "/console/templates/some-mms-id",
]
DATA = [
    "/console/media/some-tracking-id/1",
    "/console/phones/15550100001/inbox/sbx-1/slide1.jpg",
    "/console/phones/15550100001/sent/some-id/1",
]
FORMS = [
    "/console/logout",
    "/console/send",
    "/console/phones/15550100001/settings",
    "/console/phones/15550100001/send",
]


@pytest.fixture
async def gateway(store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Gateway]:
    """The gateway with its workers; its console's password is PASSWORD."""
    await set_password(store.console, PASSWORD)
    settings = gateway_settings(tmp_path, backend, request, auth_cache_seconds=0.0)
    async with running_gateway(store, settings) as the_gateway:
        yield the_gateway


@pytest.fixture
async def quiet(store: Store, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway without workers (what is stored stays as it is), logged in to its console."""
    await set_password(store.console, PASSWORD)
    app = create_app(settings, store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as http:
        assert (await log_in(http)).status_code == 303
        yield http


def page_of(response: httpx.Response) -> lxml.html.HtmlElement:
    assert response.status_code == 200, (response.status_code, response.text[:500])
    return lxml.html.fromstring(response.text)


def text_of(response: httpx.Response) -> str:
    """The page's visible text, whitespace collapsed."""
    return " ".join(str(page_of(response).text_content()).split())


def csrf_of(response: httpx.Response) -> str:
    return str(page_of(response).xpath("//input[@name='csrf']/@value")[0])


async def log_in(http: httpx.AsyncClient, password: str = PASSWORD, next_url: str = "") -> httpx.Response:
    form = await http.get("/console/login" + (f"?next={next_url}" if next_url else ""))
    token = lxml.html.fromstring(form.text).xpath("//input[@name='token']/@value")[0]
    target = "/console/login" + (f"?next={next_url}" if next_url else "")
    return await http.post(target, data={"token": token, "password": password})


async def logged_in(gateway: Gateway) -> httpx.AsyncClient:
    response = await log_in(gateway.http)
    assert response.status_code == 303, response.text
    return gateway.http


# who may see it -----------------------------------------------------------------------------------


async def test_without_a_session_pages_redirect_to_the_login_and_data_answers_401(gateway: Gateway) -> None:
    http = gateway.http
    for cookie in (None, "not-a-session-token"):
        http.cookies.clear()
        if cookie:
            http.cookies.set("mmsgate_console", cookie, domain="gateway.test", path="/console")
        for path in PAGES:
            response = await http.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/console/login?next=%2Fconsole%2F"), path
        for path in DATA:
            response = await http.get(path)
            assert response.status_code == 401, path
        for path in FORMS:
            response = await http.post(path, data={"csrf": "x"})
            assert response.status_code == 303 and response.headers["location"].startswith("/console/login"), path
    assert (await http.get("/console")).headers["location"] == "http://gateway.test/console/"
    assert (await http.get("/console/")).headers["location"] == "/console/messages"
    # what carries no data is served to anyone: the login page, the style sheet and the script
    assert (await http.get("/console/login")).status_code == 200
    css = await http.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert (await http.get("/console/static/console.js")).status_code == 200
    assert (await http.get("/console/static/../app.py")).status_code == 404
    assert (await http.get("/console/uploads/" + secrets.token_urlsafe(24))).status_code == 404


async def test_logging_in_and_out(gateway: Gateway) -> None:
    http = gateway.http
    wrong = await log_in(http, "not the password")
    assert wrong.status_code == 401 and "Wrong password" in wrong.text
    assert "mmsgate_console" not in http.cookies

    response = await log_in(http, next_url="/console/phones")
    assert response.status_code == 303 and response.headers["location"] == "/console/phones"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("mmsgate_console="))
    token = cookie.split(";", 1)[0].split("=", 1)[1]
    assert len(token) >= 43  # 256 random bits
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "path=/console", "samesite=strict"} <= attributes
    # only the token's hash is stored
    assert await gateway.store.console.console_session(token_hash(token), utcnow()) is not None
    assert await gateway.store.console.console_session(token, utcnow()) is None

    page = await http.get("/console/messages")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-frame-options"] == "DENY"
    for path in ("/console/phones", "/console/phones/15550100001", "/console/send", "/console/templates"):
        other = await http.get(path)
        assert other.status_code == 200 and other.headers["content-security-policy"] == policy, path
    # a form without the session's CSRF token is refused; with it, it works
    assert (await http.post("/console/logout", data={"csrf": "forged"})).status_code == 403
    assert (await http.post("/console/logout")).status_code == 403
    out = await http.post("/console/logout", data={"csrf": csrf_of(page)})
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    assert await gateway.store.console.console_session(token_hash(token), utcnow()) is None
    http.cookies.set("mmsgate_console", token, domain="gateway.test", path="/console")
    assert (await http.get("/console/messages")).status_code == 303


async def test_the_login_form_needs_its_own_token(gateway: Gateway) -> None:
    http = gateway.http
    await http.get("/console/login")  # sets the login cookie
    forged = await http.post("/console/login", data={"token": "made-up", "password": PASSWORD})
    assert forged.status_code == 400 and "mmsgate_console" not in http.cookies


async def test_the_password_is_made_at_first_start_and_can_be_reset(store: Store) -> None:
    first = await ensure_password(store.console)
    assert first is not None and len(first) >= 24
    assert await ensure_password(store.console) is None  # shown once
    stored = await store.console.console_password_hash()
    assert stored is not None and stored.startswith("scrypt$") and first not in stored


def test_console_password_command_prints_a_new_one_and_ends_sessions(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["console", "password", "--data-dir", str(tmp_path), "--json"]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    second = runner.invoke(main, args)
    one, two = (msgspec.json.decode(r.output)["password"] for r in (first, second))
    assert one != two and len(two) >= 24
    human = runner.invoke(main, args[:-1])
    assert human.exit_code == 0 and "console password (shown once): " in human.output


# messages -----------------------------------------------------------------------------------------


def stored_message(caller: Caller, created: datetime, **changes: object) -> Message:
    message = Message(
        tracking_id=f"t-{secrets.token_hex(8)}",
        account_id=caller.account_id,
        service_id=caller.service_id,
        to=caller.to,
        sender=caller.sender,
        from_mask=None,
        expires_at=created + timedelta(days=3),
        cache_content=True,
        sending=Sending("Hi", "fallback", False, False, created + timedelta(days=365), None, (Slide("hello"),)),
        created_at=created,
    )
    return msgspec.structs.replace(message, **changes)


def listed(response: httpx.Response) -> list[str]:
    return [str(a) for a in page_of(response).xpath("//div[@id='rows']//tbody/tr/td[2]/a/code/text()")]


async def all_pages(http: httpx.AsyncClient, url: str) -> list[str]:
    seen: list[str] = []
    while True:
        response = await http.get(url)
        seen.extend(listed(response))
        older = page_of(response).xpath("//a[@rel='next']/@href")
        if not older:
            return seen
        url = str(older[0])


async def test_the_message_list_filters_and_pages(quiet: httpx.AsyncClient, store: Store) -> None:
    http = quiet
    one = await provision(store)
    other = await provision(store, sender="28445")
    other = Caller(other.account_id, other.api_key, other.service_id, other.sender, to="15550100077")
    day = datetime(2026, 3, 1, 12, tzinfo=UTC)
    messages = [stored_message(one, day + timedelta(minutes=i)) for i in range(120)]
    messages += [stored_message(other, day + timedelta(days=1, seconds=i)) for i in range(5)]
    messages += [  # two at the very same instant: the tracking id orders them
        stored_message(one, day + timedelta(days=2), tracking_id="t-same-a"),
        stored_message(one, day + timedelta(days=2), tracking_id="t-same-b", state=MessageState.DELIVERED),
    ]
    await asyncio.gather(*(store.accepting.accept_message(m) for m in messages))
    newest_first = [m.tracking_id for m in sorted(messages, key=lambda m: (m.created_at, m.tracking_id), reverse=True)]

    assert await all_pages(http, "/console/messages") == newest_first  # every message once, in order
    first = await http.get("/console/messages")
    assert len(listed(first)) == 50
    assert page_of(first).xpath("//div[@id='rows']/@data-refresh")  # the first page follows new messages

    by_state = await all_pages(http, "/console/messages?state=delivered")
    assert by_state == ["t-same-b"]
    assert await all_pages(http, f"/console/messages?number={other.to}") == newest_first[2:7]
    assert await all_pages(http, f"/console/messages?number=%2B{other.sender}") == newest_first[2:7]
    assert await all_pages(http, f"/console/messages?account={other.account_id}") == newest_first[2:7]
    in_range = await all_pages(http, "/console/messages?since=2026-03-02&until=2026-03-02")
    assert in_range == newest_first[2:7]
    assert len(await all_pages(http, f"/console/messages?account={one.account_id}&until=2026-03-01")) == 120
    refused = await http.get("/console/messages?state=nonsense&number=abc&since=yesterday")
    assert "is not a message state" in refused.text and "is not a number" in refused.text
    assert "dates are YYYY-MM-DD" in refused.text


@pytest.mark.timeout(600)
async def test_the_page_query_reads_the_index_at_100000_messages(store: Store, backend: str, caller: Caller) -> None:
    assert isinstance(store, Store)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    template = stored_message(caller, start)
    batch = 5000
    for offset in range(0, 100_000, batch):  # through the accept path: group commits of many at once
        await asyncio.gather(
            *(
                store.accepting.accept_message(
                    msgspec.structs.replace(
                        template,
                        tracking_id=f"t-{offset + i:06d}",
                        created_at=start + timedelta(seconds=offset + i),
                        state=MessageState.DELIVERED if (offset + i) % 3 else MessageState.ACCEPTED,
                    )
                )
                for i in range(batch)
            )
        )
    if backend == "postgresql":
        await store.db.write([("ANALYZE messages", ())])  # what autovacuum does after such a load

    last = await store.console.console_messages(MessageQuery(), 1)
    assert last[0].tracking_id == "t-099999"
    queries = [
        MessageQuery(),
        MessageQuery(before=(last[0].created_at.timestamp(), last[0].tracking_id)),
        MessageQuery(before=((start + timedelta(seconds=50_000)).timestamp(), "t-050000")),
        MessageQuery(state="delivered", before=((start + timedelta(seconds=70_000)).timestamp(), "t-070000")),
        MessageQuery(account_id=caller.account_id),
        MessageQuery(since=start + timedelta(hours=5), until=start + timedelta(hours=6)),
    ]
    for query in queries:
        sql, params = messages_page_query(query, 51)
        if backend == "sqlite":
            plan = " | ".join(str(row[3]) for row in await store.db.read("EXPLAIN QUERY PLAN " + sql, params))
            assert "USING INDEX messages_created" in plan or "USING COVERING INDEX messages_created" in plan, plan
            assert "TEMP B-TREE" not in plan, plan  # no sort
        else:
            plan = "\n".join(str(row[0]) for row in await store.db.read("EXPLAIN " + sql, params))
            assert "Index Scan Backward using messages_created" in plan, plan
            assert "Sort" not in plan and "Seq Scan" not in plan, plan
    page = await store.console.console_messages(queries[2], 50)
    assert [m.tracking_id for m in page] == [f"t-{n:06d}" for n in range(49_999, 49_949, -1)]


# a message in detail ------------------------------------------------------------------------------


async def test_a_message_in_detail(gateway: Gateway) -> None:
    http = await logged_in(gateway)
    caller, _ = await gateway.account()
    gateway.receiver.answers["/postbacks"] = [500, 200]  # the first postback fails once, then all go through
    photo = samples.jpeg(320, 240)
    url = gateway.origin.route("/photo.jpg", file_reply(photo, "image/jpeg"))
    tracking_id = await gateway.send(
        caller,
        message_subject="Your receipt",
        client_reference="order-7",
        from_mask="Coffee",
        slide=[{"message-text": "Thanks ☕ <b>", "image": {"url": url}}, {"message-text": "See you"}],
    )
    await gateway.postbacks(tracking_id, ["N101", "N101", "N102"])

    async def attempts_recorded() -> httpx.Response | None:
        response = await http.get(f"/console/messages/{tracking_id}")
        return response if text_of(response).count("HTTP 200") == 2 else None

    response = await eventually(attempts_recorded, what="both postbacks recorded delivered")
    page, text = page_of(response), text_of(response)
    message = await gateway.store.messages.find_message(tracking_id)
    assert message.carrier_message_id
    assert f"sandbox · message id {message.carrier_message_id}" in text
    # the timeline: every event with its code and status
    timeline = [
        [" ".join(str(c.text_content()).split()) for c in row.xpath("td")]
        for row in page.xpath("//table[@class='timeline']/tbody/tr")
    ]
    assert [(r[1], r[2]) for r in timeline] == [
        ("", "Accepted"),
        ("", "Media ready"),
        ("", "Submitting"),
        ("N101", "Sent"),
        ("N102", "Delivered"),
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r[0]) for r in timeline)
    # every postback attempt with its HTTP status
    rows = page.xpath("//table[@class='postbacks']/tbody/tr")
    attempts = [[" ".join(str(li.text_content()).split()) for li in row.xpath(".//ol/li")] for row in rows]
    assert [row.xpath("td[1]")[0].text_content() for row in rows] == ["N101", "N102"]
    assert [len(a) for a in attempts] == [2, 1]
    assert "HTTP 500" in attempts[0][0] and "HTTP 200" in attempts[0][1] and "HTTP 200" in attempts[1][0]
    records = await gateway.store.console.console_postbacks(tracking_id)
    assert [[t.http_status for t in r.tries] for r in records] == [[500, 200], [200]]
    assert [[t.attempt for t in r.tries] for r in records] == [[1, 2], [1]]
    assert records[0].tries[0].error == "HTTP 500" and records[0].tries[1].error is None
    # the request as received, rebuilt
    request = msgspec.json.decode(str(page.xpath("//pre[@class='json']/text()")[0]))
    assert request["action"] == "sendmms"
    assert (request["to"], request["from"], request["service-id"]) == (caller.to, caller.sender, caller.service_id)
    assert (request["from-mask"], request["client-reference"]) == ("Coffee", "order-7")
    assert request["message-subject"] == "Your receipt"
    assert request["slide"] == [{"message-text": "Thanks ☕ <b>", "image": {"url": url}}, {"message-text": "See you"}]
    assert request["mms-expiry-timestamp"].endswith("Z")
    assert "<b>" not in response.text.split("<pre", 1)[0]  # text is escaped, never markup
    # the slides with a preview of the prepared picture, served to a session only
    (preview,) = page.xpath("//figure[@class='preview']/img/@src")
    image = await http.get(str(preview))
    assert image.status_code == 200 and image.content == photo
    assert image.headers["content-type"] == "image/jpeg"
    assert "sandbox" in image.headers["content-security-policy"]
    assert "320×240" in text
    http.cookies.clear()
    assert (await http.get(str(preview))).status_code == 401
    assert (await http.get(f"/console/messages/{tracking_id}")).status_code == 303


async def test_a_message_that_fell_back_to_sms_shows_its_segments(gateway: Gateway) -> None:
    http = await logged_in(gateway)
    caller, _ = await gateway.account()
    await gateway.store.sandbox.set_handset(Handset(caller.to, Behaviour.NO_MMS))
    tracking_id = await gateway.send(caller, slide=[{"message-text": "hello"}], fallback_sms_text="Your MMS")
    await gateway.postbacks(tracking_id, ["N202"])
    response = await http.get(f"/console/messages/{tracking_id}")
    text = text_of(response)
    assert "SMS segments" in text and "N202" in text
    (sms,) = await gateway.store.sandbox.sandbox_sms_inbox(caller.to)
    assert sms.message_id in text
    phone = text_of(await http.get(f"/console/phones/{caller.to}"))
    assert "Your MMS" in phone and "· SMS" in phone
    missing = await http.get("/console/messages/no-such-message")
    assert missing.status_code == 404


# templates ----------------------------------------------------------------------------------------


async def test_templates_with_their_state_and_preview(gateway: Gateway) -> None:
    http = await logged_in(gateway)
    caller, _ = await gateway.account()
    photo = samples.jpeg(200, 150)
    url = gateway.origin.route("/t.jpg", file_reply(photo, "image/jpeg"))
    broken = gateway.origin.route("/broken.jpg", file_reply(b"not a picture at all", "image/jpeg"))
    ids = {}
    for name, media in (("promo", url), ("broken", broken)):
        saved = await gateway.http.post(
            "/ep/v2/",
            json={"action": "savemms", "name": name, "slide": [{"message-text": "Sale", "image": {"url": media}}]},
            headers={"x-api-key": caller.api_key},
        )
        ids[name] = saved.json()["mms-id"]

    async def settled() -> httpx.Response | None:
        response = await http.get("/console/templates")
        states = page_of(response).xpath("//tbody/tr/td[6]/span/text()")
        return response if sorted(states) == ["failed", "ready"] else None

    listing = await eventually(settled, what="both templates to settle")
    rows = {
        str(r.xpath("td[2]/a/text()")[0]): str(r.xpath("td[6]/span/text()")[0])
        for r in page_of(listing).xpath("//tbody/tr")
    }
    assert rows == {"promo": "ready", "broken": "failed"}
    detail = await http.get(f"/console/templates/{ids['promo']}")
    text = text_of(detail)
    assert "N003" in text and "Sale" in text and "1 prepared" in text
    (preview,) = page_of(detail).xpath("//figure[@class='preview']/img/@src")
    assert (await http.get(str(preview))).content == photo
    failed = text_of(await http.get(f"/console/templates/{ids['broken']}"))
    assert "E004" in failed and "0 prepared" in failed
    filtered = await http.get(f"/console/templates?account={caller.account_id}-other")
    assert page_of(filtered).xpath("//tbody/tr") == []


# virtual phones -----------------------------------------------------------------------------------


async def test_a_phone_shows_its_inbox_and_answers_with_an_n401(gateway: Gateway) -> None:
    http = await logged_in(gateway)
    caller, secret = await gateway.account()
    photo, card = samples.jpeg(240, 180), samples.vcard()
    photo_url = gateway.origin.route("/p.jpg", file_reply(photo, "image/jpeg"))
    card_url = gateway.origin.route("/c.vcf", file_reply(card, "text/vcard"))
    tracking_id = await gateway.send(
        caller,
        message_subject="Hello phone",
        slide=[{"message-text": "A picture", "image": {"url": photo_url}}, {"contact": {"url": card_url}}],
    )
    await gateway.postbacks(tracking_id, ["N101", "N102"])

    phone = await http.get(f"/console/phones/{caller.to}")
    page = page_of(phone)
    (bubble,) = page.xpath("//article[contains(@class, 'bubble') and contains(@class, 'in')]")
    assert bubble.get("data-tracking-id") == tracking_id
    bubble_text = " ".join(str(bubble.text_content()).split())
    assert "Hello phone" in bubble_text and "A picture" in bubble_text and f"From {caller.sender}" in bubble_text
    (image,) = bubble.xpath(".//img/@src")
    assert (await http.get(str(image))).content == photo
    (attachment,) = bubble.xpath(".//a[@class='attachment']")
    download = await http.get(str(attachment.get("href")))
    assert download.content == card and download.headers["content-disposition"].startswith("attachment")
    assert page.xpath("//div[@id='conversation']/@data-refresh")

    # the phone's behaviour is set there
    csrf = csrf_of(phone)
    saved = await http.post(
        f"/console/phones/{caller.to}/settings", data={"csrf": csrf, "behaviour": "rejects", "delay": "2.5"}
    )
    assert saved.status_code == 303
    assert await gateway.store.sandbox.get_handset(caller.to) == Handset(caller.to, Behaviour.REJECTS, 2.5)
    bad = await http.post(f"/console/phones/{caller.to}/settings", data={"csrf": csrf, "behaviour": "explodes"})
    assert bad.status_code == 400

    # ... and it answers: an MMS to the account's number, which reaches the account as an N401
    options = page.xpath("//form[@class='compose']//select[@name='to']/option")
    assert caller.sender in [o.get("value") for o in options]
    selected = [o.get("value") for o in options if o.get("selected") is not None]
    assert selected == [caller.sender]  # replying to who wrote last
    reply = samples.png(120, 90)
    sent = await http.post(
        f"/console/phones/{caller.to}/send",
        data={"csrf": csrf, "to": caller.sender, "subject": "Re: hello", "text": "Got it"},
        files={"files": ("reply.png", reply, "image/png")},
    )
    assert sent.status_code == 303
    inbound_id = sent.headers["location"].split("sent=", 1)[1]
    (mo,) = await gateway.postbacks(inbound_id, ["N401"])
    assert mo.signed_by(secret)
    assert (mo.json["from"], mo.json["to"], mo.json["message-subject"]) == (caller.to, caller.sender, "Re: hello")
    assert [c["file"].rsplit("/", 1)[1] for c in mo.json["content"]] == ["1.txt", "2.png"]
    after = await http.get(sent.headers["location"])
    (out,) = page_of(after).xpath("//article[contains(@class, 'out')]")
    assert "Got it" in out.text_content() and "Re: hello" in out.text_content()
    (picture,) = out.xpath(".//img/@src")
    assert (await http.get(str(picture))).content == reply
    assert "N401" in text_of(after)
    refused = await http.post(f"/console/phones/{caller.to}/send", data={"csrf": csrf, "to": "19995550123"})
    assert refused.status_code == 400 and "not a number of any account" in refused.text

    phones = await http.get("/console/phones")
    rows = {str(r.xpath("td[1]/a/text()")[0]): r for r in page_of(phones).xpath("//tbody/tr")}
    assert caller.to in rows and "rejects" in rows[caller.to].text_content()
    opened = await http.get("/console/phones?number=%2B15550100042")
    assert opened.status_code == 303 and opened.headers["location"] == "/console/phones/15550100042"
    assert (await http.get("/console/phones?number=nope")).status_code == 400


# a test send ----------------------------------------------------------------------------------------


async def test_a_test_send_with_an_uploaded_file_goes_through_the_api(gateway: Gateway) -> None:
    http = await logged_in(gateway)
    caller, _ = await gateway.account()
    form = await http.get(f"/console/send?to={caller.to}")
    page = page_of(form)
    assert caller.service_id in page.xpath("//select[@name='service-id']/option/@value")
    assert page.xpath("//input[@name='to']/@value") == [caller.to]
    photo = samples.jpeg(300, 200)
    fields = {
        "csrf": csrf_of(form),
        "account": caller.account_id,
        "service-id": caller.service_id,
        "from": caller.sender,
        "to": caller.to,
        "message-subject": "Console test",
        "fallback-sms-text": "See the picture",
        "slide1-text": "Uploaded",
        "slide2-text": "By URL",
        "slide2-url": gateway.origin.route("/u.jpg", file_reply(samples.jpeg(64, 48), "image/jpeg")),
        "slide2-kind": "image",
    }
    sent = await http.post("/console/send", data=fields, files={"slide1-file": ("photo.jpg", photo, "image/jpeg")})
    assert sent.status_code == 303, sent.text
    tracking_id = sent.headers["location"].rsplit("/", 1)[1]
    await gateway.postbacks(tracking_id, ["N101", "N102"])

    message = await gateway.store.messages.find_message(tracking_id)
    assert (message.account_id, message.sending.subject) == (caller.account_id, "Console test")
    upload_url = message.sending.slides[0].media[0].url
    public = f"http://{gateway.settings.host}:{gateway.settings.port}/console/uploads/"
    assert upload_url.startswith(public)
    token = upload_url.removeprefix(public)
    assert len(token) >= 32  # 192 random bits
    parts = await gateway.store.messages.list_parts(tracking_id)
    assert parts[0].sha256 == hashlib.sha256(photo).hexdigest()  # read from the upload, unchanged
    # the upload URL serves the file without a session (a worker elsewhere fetches it), for an hour
    http.cookies.clear()
    served = await http.get(f"/console/uploads/{token}")
    assert served.status_code == 200 and served.content == photo
    assert served.headers["content-disposition"].startswith("attachment")
    old = upload_token_hash("expired-token")
    now = utcnow()
    await gateway.store.console.add_console_upload(
        ConsoleUpload(old, parts[0].sha256, "image/jpeg", "old.jpg", len(photo), now - timedelta(hours=2), now)
    )
    assert (await http.get("/console/uploads/expired-token")).status_code == 410


async def test_a_refused_test_send_shows_the_apis_error(gateway: Gateway) -> None:
    http = await logged_in(gateway)
    caller, _ = await gateway.account()
    other, _ = await gateway.account(sender="28445")
    form = await http.get("/console/send")
    fields = {
        "csrf": csrf_of(form),
        "account": caller.account_id,
        "service-id": other.service_id,  # another account's campaign
        "from": caller.sender,
        "to": caller.to,
        "fallback-sms-text": "x",
        "slide1-text": "hi",
    }
    refused = await http.post("/console/send", data=fields)
    assert refused.status_code == 422
    assert "E627" in refused.text
    disabled = await gateway.store.accounts.update_account(caller.account_id, disabled=True)
    assert disabled.disabled
    blocked = await http.post("/console/send", data={**fields, "service-id": caller.service_id})
    assert blocked.status_code == 422 and "E103" in blocked.text
    unknown = await http.post("/console/send", data={**fields, "account": "acc_nobody"})
    assert unknown.status_code == 422 and "E104" in unknown.text
    odd = await http.post(
        "/console/send", data=fields, files={"slide1-file": ("x.bin", b"\x00\x01", "application/x-odd")}
    )
    assert odd.status_code == 400 and "is not a picture" in odd.text
