"""The JSON-lines server: answers a scripted client, and survives what a careless client sends."""
from __future__ import annotations

import asyncio
import json

import pytest

from storydiff.serve import AgentServer

pytestmark = pytest.mark.usefixtures("one_thread")


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, raw: bytes) -> dict:
        self.writer.write(raw)
        await self.writer.drain()
        return json.loads(await asyncio.wait_for(self.reader.readline(), 30))

    async def call(self, **request) -> dict:
        return await self.send(json.dumps(request).encode() + b"\n")

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def serving(engine, script, **options) -> None:
    """Run `script(port)` against a fresh server on a free localhost port."""

    async def main() -> None:
        server = await AgentServer(engine, **options).start("127.0.0.1", 0)
        async with server:
            await script(server.sockets[0].getsockname()[1])

    asyncio.run(main())


def test_a_scripted_client_plays_a_scene(engine):
    async def script(port: int) -> None:
        c = await Client.connect(port)
        opened = await c.call(id=1, call="open", situation="storm", seed=4)
        assert opened == {"id": 1, "ok": True, "result": {"agent": "a1", "situation": "storm",
                                                           "cast": ["mara", "ilan"], "beats": 8}}
        first = await c.call(id=2, call="next_beat", agent="a1")
        assert first["ok"] and first["result"]["beat"] == 1
        assert [cell["character"] for cell in first["result"]["cells"]] == ["mara", "ilan"]
        assert set(first["result"]["cells"][0]) >= {"felt", "shown", "mood", "stance", "behaviour"}
        event = {"id": "gull", "text": "A gull takes the bait.",
                 "appraisals": [{"character": "ilan", "desirability": -0.5}]}
        observed = await c.call(id=3, call="observe", agent="a1", event=event)
        assert observed["result"] == {"pending": ["gull"]}
        second = await c.call(id=4, call="next_beat", agent="a1")
        assert second["result"]["beat"] == 2 and second["result"]["events"] == ["gull"]
        state = await c.call(id=5, call="state", agent="a1")
        assert state["result"]["beat"] == 2 and state["result"]["state"]["mara"]["beat"] == 2
        pinned = await c.call(id=6, call="pin", agent="a1", var="ilan.felt.joy@3", max=0.1)
        assert pinned["result"] == {"pins": ["ilan.felt.joy@3"]}
        assert (await c.call(id=7, call="close", agent="a1"))["result"] == {"closed": "a1"}
        gone = await c.call(id=8, call="next_beat", agent="a1")
        assert gone["error"]["code"] == "unknown-agent" and gone["id"] == 8
        await c.close()

    serving(engine, script)


def test_bad_requests_get_error_replies_and_the_server_lives_on(engine):
    async def script(port: int) -> None:
        c = await Client.connect(port)
        assert (await c.send(b"{not json\n"))["error"]["code"] == "bad-json"
        assert (await c.send(b"\xff\xfe\n"))["error"]["code"] == "bad-json"
        assert (await c.send(b"[1, 2]\n"))["error"]["code"] == "bad-request"
        assert (await c.call(id="x", call="dance"))["error"]["code"] == "unknown-call"
        assert (await c.call(call="open", situation="nowhere"))["error"]["code"] == "not-found"
        assert (await c.call(call="open", situation="storm", seed="zero"))["error"]["code"] == "bad-request"
        assert (await c.call(call="open", situation="storm", colour="red"))["error"]["code"] == "bad-request"
        long = await c.send(b'{"call": "open", "situation": "' + b"s" * 10_000 + b'"}\n')
        assert long["error"]["code"] == "line-too-long"
        assert (await c.call(call="open", situation="storm"))["ok"]
        assert (await c.call(call="open", situation="storm"))["error"]["code"] == "too-many-agents"
        stranger = {"id": "x", "appraisals": [{"character": "nobody", "desirability": -1}]}
        refused = await c.call(call="observe", agent="a1", event=stranger)
        assert refused["error"]["code"] == "refused" and "not in the cast" in refused["error"]["message"]
        typo = await c.call(call="observe", agent="a1", event={"id": "x", "appraisals": "lots"})
        assert typo["error"]["code"] == "invalid"
        assert (await c.call(call="state", agent="a1"))["result"]["pending"] == []
        # Abrupt disconnects: mid-line, and with an agent open; then a new client is served.
        c.writer.write(b'{"call": "next_be')
        await c.writer.drain()
        c.writer.transport.abort()
        d = await Client.connect(port)
        assert (await d.call(call="open", situation="storm"))["ok"]
        d.writer.transport.abort()
        e = await Client.connect(port)
        opened = await e.call(call="open", situation="mending-nets")
        assert opened["result"]["cast"] == ["mara", "ilan", "leonor"]
        assert (await e.call(call="next_beat", agent="a1"))["result"]["beat"] == 1
        await e.close()

    serving(engine, script, max_line=4096, max_agents=1)


def test_serve_refuses_a_port_out_of_range_in_one_line(capsys):
    from storydiff.cli import main

    assert main(["serve", "--port", "99999"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "at most 65535" in err


def test_serve_names_the_address_it_cannot_listen_on(capsys):
    from storydiff.cli import main

    assert main(["serve", "--host", "no.such.host.invalid", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot listen on no.such.host.invalid:7878" in err
