"""`storydiff serve`: live agents for engines that do not speak Python, as JSON lines over TCP.

One request per line, one reply per line, in order. A request names a `call` (`open`,
`observe`, `pin`, `next_beat`, `state`, `close`) and may carry an `id` that the reply echoes;
the schema is in the README ("Driving game characters"). A bad request gets an error reply and
the connection stays open; nothing a client sends stops the server. Each connection holds its
own agents (at most `max_agents`, each keeping `history_limit` beats), and a line longer than
`max_line` bytes is refused unread, so a connection's memory stays bounded. It binds to
localhost unless told otherwise: it reads situation files from the paths clients name.
"""
from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError as ModelError

from .agent import Agent
from .engine import Engine
from .errors import StorydiffError, ValidationError
from .models import Cast, Event, Pin, Situation

MAX_LINE = 64 * 1024
MAX_AGENTS = 16
HISTORY_LIMIT = 64
OPEN_OPTIONS = ("seed", "window", "history_limit")


class RequestError(Exception):
    """A request the server refuses, with a stable `code` for the client."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class Connection:
    agents: dict[str, Agent] = field(default_factory=dict)
    opened: int = 0


class AgentServer:
    """Serves agents of one engine; model calls run one at a time in a worker thread."""

    def __init__(self, engine: Engine, max_line: int = MAX_LINE, max_agents: int = MAX_AGENTS,
                 history_limit: int = HISTORY_LIMIT):
        self.engine, self.max_line, self.max_agents = engine, max_line, max_agents
        self.history_limit = history_limit
        self._lock = asyncio.Lock()
        self._casts: dict[Path, Cast] = {}

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
        return await asyncio.start_server(self.handle, host, port, limit=self.max_line)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client: read lines, answer each; an oversized line is skipped to its end and refused once."""
        conn, skipping = Connection(), False
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError as e:  # the client closed; answer a last unterminated line
                    if e.partial.strip() and not skipping:
                        await self._reply(writer, await self.answer(conn, e.partial))
                    break
                except asyncio.LimitOverrunError as e:
                    await reader.readexactly(e.consumed)
                    if not skipping:
                        limit = f"a request line may hold at most {self.max_line} bytes"
                        await self._reply(writer, _error(None, "line-too-long", limit))
                    skipping = True
                    continue
                if skipping:  # the tail of the oversized line
                    skipping = False
                    continue
                if line.strip():
                    await self._reply(writer, await self.answer(conn, line))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away mid-line or mid-reply
        finally:
            conn.agents.clear()
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, reply: dict) -> None:
        writer.write(json.dumps(reply, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
        await writer.drain()

    async def answer(self, conn: Connection, line: bytes) -> dict:
        """The reply to one request line; never raises."""
        rid = None
        try:
            try:
                request = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise RequestError("bad-json", f"not a JSON object: {e}") from None
            if not isinstance(request, dict):
                raise RequestError("bad-request", "a request is a JSON object with a \"call\"")
            rid = request.get("id")
            call = request.get("call")
            handler = _CALLS.get(call) if isinstance(call, str) else None
            if handler is None:
                raise RequestError("unknown-call", f"unknown call {call!r}; use one of: {', '.join(_CALLS)}")
            async with self._lock:
                result = await asyncio.to_thread(handler, self, conn, request)
            return {"id": rid, "ok": True, "result": result}
        except RequestError as e:
            return _error(rid, e.code, str(e))
        except (StorydiffError, ValidationError) as e:
            return _error(rid, "refused", str(e))
        except ModelError as e:
            where = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
            return _error(rid, "invalid", where)
        except Exception as e:  # noqa: BLE001 -- a bug must not take the server down with it
            return _error(rid, "internal", f"{type(e).__name__}: {e}")

    # -- calls ----------------------------------------------------------------------------------
    def open(self, conn: Connection, request: dict) -> dict:
        if len(conn.agents) >= self.max_agents:
            raise RequestError("too-many-agents",
                               f"a connection may hold {self.max_agents} agents; close one first")
        _only(request, {"situation", *OPEN_OPTIONS})
        situation = self._situation(request.get("situation"))
        options = {k: request[k] for k in OPEN_OPTIONS if k in request}
        for k, v in options.items():
            if isinstance(v, bool) or not isinstance(v, int):
                raise RequestError("bad-request", f"{k} must be a whole number, got {v!r}")
        options["history_limit"] = min(options.get("history_limit", self.history_limit), self.history_limit)
        agent = self.engine.agent(situation, **options)
        conn.opened += 1
        handle = f"a{conn.opened}"
        conn.agents[handle] = agent
        return {"agent": handle, "situation": situation.id, "cast": agent.cast_ids, "beats": situation.beats}

    def observe(self, conn: Connection, request: dict) -> dict:
        _only(request, {"agent", "event", "at"})
        agent = _agent(conn, request)
        event = request.get("event")
        if not isinstance(event, dict):
            raise RequestError("bad-request", "observe needs an \"event\" object")
        at = request.get("at")
        agent.observe(Event.model_validate({"beat": 0, **event}), at=at)
        return {"pending": [e.id for e in agent.pending]}

    def pin(self, conn: Connection, request: dict) -> dict:
        _only(request, {"agent", "var", "min", "max", "equal"})
        agent = _agent(conn, request)
        agent.pin(Pin.model_validate({k: request[k] for k in ("var", "min", "max", "equal") if k in request}))
        return {"pins": [p.var for p in agent._pins]}

    def next_beat(self, conn: Connection, request: dict) -> dict:
        _only(request, {"agent"})
        return _agent(conn, request).next_beat().model_dump(mode="json")

    def state(self, conn: Connection, request: dict) -> dict:
        _only(request, {"agent"})
        agent = _agent(conn, request)
        cells = {c: cell.model_dump(mode="json") for c, cell in agent.state.items()}
        return {"beat": agent.beat, "state": cells, "pending": [e.id for e in agent.pending]}

    def close(self, conn: Connection, request: dict) -> dict:
        _only(request, {"agent"})
        _agent(conn, request)
        del conn.agents[request["agent"]]
        return {"closed": request["agent"]}

    def _situation(self, name: object) -> Situation:
        """A bundled situation by id (`storm`), or a .situation.xml path on the server's machine."""
        from .loader import bundled_library, find_characters_dir, load_characters, load_situation

        if not isinstance(name, str) or not name:
            raise RequestError("bad-request",
                               "open needs \"situation\": a bundled id (e.g. \"storm\") or a path")
        bundled = bundled_library() / "situations" / f"{name}.situation.xml"
        path = bundled if "/" not in name and "\\" not in name and bundled.is_file() else Path(name)
        if not path.is_file():
            raise RequestError("not-found",
                               f"no situation {name!r}: not a bundled id, nor a file on the server")
        folder = find_characters_dir(path).resolve()
        if folder not in self._casts:
            self._casts[folder] = load_characters(folder)
        return load_situation(path, self._casts[folder])


_CALLS = {"open": AgentServer.open, "observe": AgentServer.observe, "pin": AgentServer.pin,
          "next_beat": AgentServer.next_beat, "state": AgentServer.state, "close": AgentServer.close}


def _error(rid: object, code: str, message: str) -> dict:
    return {"id": rid, "ok": False, "error": {"code": code, "message": message}}


def _only(request: dict, allowed: set[str]) -> None:
    extra = sorted(set(request) - allowed - {"id", "call"})
    if extra:
        raise RequestError("bad-request", f"{request['call']} does not take {', '.join(map(repr, extra))}")


def _agent(conn: Connection, request: dict) -> Agent:
    handle = request.get("agent")
    if not isinstance(handle, str) or handle not in conn.agents:
        raise RequestError("unknown-agent", f"no open agent {handle!r} on this connection "
                           f"(open: {', '.join(conn.agents) or 'none'})")
    return conn.agents[handle]


def serve(engine: Engine, host: str = "127.0.0.1", port: int = 7878, max_agents: int = MAX_AGENTS) -> None:
    """Run the server until interrupted; prints where it listens on stderr."""

    async def main() -> None:
        try:
            server = await AgentServer(engine, max_agents=max_agents).start(host, port)
        except OSError as e:  # an unknown host, a port in use: say which
            raise OSError(e.errno, f"cannot listen on {host}:{port}: {e.strerror or e}") from None
        where = ", ".join(f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in server.sockets)
        print(f"storydiff serve: listening on {where} (JSON lines; Ctrl+C stops)", file=sys.stderr,
              flush=True)
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
