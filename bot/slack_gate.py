"""What every HTTP request to `/slack/events` passes before Bolt sees it.

Order matters, and it is the contract the README's security section states:

1. **Signature first.** Slack's v0 signature (HMAC-SHA256 of `v0:{timestamp}:{raw body}`
   with the signing secret, timestamp within 5 minutes) is checked before anything reads
   the body. Malformed headers (missing, non-numeric, huge, negative or float timestamps;
   non-ASCII or wrong-scheme signatures) are simply "not verified". An unverified request
   gets 401 and causes nothing: no Slack or GitHub call, no state row, no outbound request,
   and one log line without its body (bodies can carry personal data, and a stranger must
   not be able to write into our logs).
2. **Readable body.** A verified request whose body Bolt could not parse (a `payload` that
   is not JSON, JSON nested deeper than Slack ever sends) gets 400 with a plain reason.
3. **Once.** Slack resends events it got no 200 for (`X-Slack-Retry-Num`), and a signed
   request can be replayed within its 5 minutes. Each delivery is claimed once in the state
   database under the id Slack gives the work (`event_id` for events, `trigger_id` for
   commands and interactions), or else under (timestamp, signature): a repeat gets an
   empty 200 and does nothing, also across replicas.

   The claim (`Delivery.first`) is made before the request's first effect, not always
   before Bolt sees it: a write to the state database is the largest cost of an ack, and a
   burst of acks on one machine waits on each other's. Listeners that act before they ack
   (open a modal, save a submission) and every event listener claim before they run
   (handlers/errors.ClaimFirst: an event whose claim fails gets a 500, so Slack resends
   it); a listener whose every effect comes after its ack claims there, in the quiet after
   a burst's acks, where claims made together share one transaction; an ack that carries
   an answer is claimed before it goes back (bot/web.py), so a repeat still gets an empty
   200.

A request that passes is handed to Bolt marked verified (`context["databot_verified"]`,
which no client can set) with its `Delivery` (`context["databot_delivery"]`), so the one
error path (handlers/errors.py) can refuse to act on anything else, or twice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from slack_sdk.signature import SignatureVerifier

from bot import tables
from bot.store import BatchedClaims, Store
from bot.telemetry import surface_of

logger = logging.getLogger(__name__)

VERIFIED = "databot_verified"  # BoltContext key set only for requests that passed
DELIVERY = "databot_delivery"  # BoltContext key: the request's Delivery
# Slack's timestamps are Unix seconds: ten digits until the year 2286.
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^v0=[0-9a-f]{64}$")
# Slack's payloads are a few levels deep (view state: view > state > values > block >
# action > value); anything deeper than this is not from Slack.
MAX_JSON_DEPTH = 32
# A delivery id is kept long enough to outlive Slack's retries (minutes) and the 5-minute
# signature window; older ones are pruned.
SEEN_TTL = dt.timedelta(hours=1)
PRUNE_EVERY = dt.timedelta(minutes=10)
SEEN_PREFIX = "slack-req:"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class Rejected(Exception):
    """The request is refused with `status` and a short plain `reason` (no body echo)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def verify_signature(
    verifier: SignatureVerifier, headers: Mapping[str, str], body: bytes
) -> str | None:
    """None when Slack signed `body`, else why not (for the log line; never the body)."""
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    if not timestamp or not signature:
        return "no signature headers"
    if not _TIMESTAMP.match(timestamp):
        return "malformed timestamp"
    if not _SIGNATURE.match(signature):
        return "malformed signature"
    try:
        valid = verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    except (ValueError, TypeError, UnicodeError):  # anything the checks above let through
        return "malformed signature headers"
    return None if valid else "signature mismatch or stale timestamp"


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of parsed JSON, stopping at `limit` (iterative: no recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return depth
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _load_json(text: str) -> Any:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise Rejected(400, "unreadable payload: not JSON") from exc
    if _depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise Rejected(400, "unreadable payload: nested too deeply")
    return value


def parse_body(body: bytes, content_type: str) -> dict[str, Any]:
    """The request as Bolt will read it: a form (a slash command, or `payload=<json>` for
    interactions) or JSON (Events API). Rejected(400) when it cannot be read."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(400, "unreadable body: not UTF-8") from exc
    if content_type.startswith("application/json"):
        parsed = _load_json(text)
        if not isinstance(parsed, dict):
            raise Rejected(400, "unreadable body: not a JSON object")
        return parsed
    form = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
    if "payload" in form:
        payload = _load_json(form["payload"])
        if not isinstance(payload, dict):
            raise Rejected(400, "unreadable payload: not a JSON object")
        return payload
    return form


def delivery_key(parsed: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    """The id of the work this request asks for: Slack reuses it when it resends."""
    for field in ("event_id", "trigger_id"):
        value = parsed.get(field)
        if isinstance(value, str) and value:
            return f"{SEEN_PREFIX}{field}:{value[:150]}"
    stamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "").removeprefix("v0=")
    return f"{SEEN_PREFIX}sig:{stamp}:{signature}"


class Delivery:
    """One verified request's claim on the work it asks for (see "Once" above): made at
    most once, by whichever of its first effects comes first (`first`)."""

    def __init__(self, gate: SlackGate, key: str, *, surface: str, retry: str | None) -> None:
        self._gate = gate
        self.key = key
        self.surface = surface  # for telemetry
        self.retry = retry  # X-Slack-Retry-Num, for the log line of a repeat
        self._lock = threading.Lock()
        self._first: bool | None = None
        self._failed: Exception | None = None

    @property
    def claimed(self) -> bool:
        return self._first is not None

    @property
    def repeat(self) -> bool:
        """Claimed already, and found to be a repeat."""
        return self._first is False

    def first(self) -> bool:
        """True for the first delivery of this work (claiming it now if not yet claimed),
        False for a repeat. One attempt per request: when the state database cannot be
        written, this and every later call raise that error and nothing is stored, so
        Slack's resend of an event is handled as new."""
        with self._lock:
            if self._failed is not None:
                raise self._failed
            if self._first is None:
                try:
                    self._first = self._gate.claims.claim(self.key)
                except Exception as exc:
                    self._failed = exc
                    raise
                if not self._first:
                    why = f"retry {self.retry}" if self.retry else "replay"
                    logger.info("Slack request already handled (%s): nothing done", why)
                    self._gate.on_repeat(self.surface)
                self._gate.prune()
            return self._first


class SlackGate:
    """Signature, body and once-only checks for one process (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        signing_secret: str,
        *,
        on_repeat: Callable[[str], None] = lambda surface: None,
    ) -> None:
        """`on_repeat(surface)`: told of each repeat found (telemetry)."""
        self.store = store
        self.on_repeat = on_repeat
        self.claims = BatchedClaims(store)
        self.verifier = SignatureVerifier(signing_secret)
        self._pruned_at = dt.datetime.min.replace(tzinfo=dt.UTC)
        self._prune_lock = threading.Lock()

    def admit(
        self, headers: Mapping[str, str], body: bytes
    ) -> tuple[dict[str, Any], Delivery | None]:
        """The parsed body of a verified, readable request and its Delivery, not yet
        claimed (None for Slack's URL check: answered by Bolt, nothing to do twice); else
        raises Rejected. `headers` must have lower-case names."""
        why = verify_signature(self.verifier, headers, body)
        if why is not None:
            raise Rejected(401, why)
        parsed = parse_body(body, headers.get("content-type", ""))
        if parsed.get("type") == "url_verification":
            return parsed, None
        retry = headers.get("x-slack-retry-num")
        key = delivery_key(parsed, headers)
        return parsed, Delivery(self, key, surface=surface_of(parsed), retry=retry)

    def prune(self) -> None:
        """Deletes delivery ids past SEEN_TTL, at most every PRUNE_EVERY. A failure is
        logged, never the request's: its claim is made."""
        now = dt.datetime.now(dt.UTC)
        if now - self._pruned_at < PRUNE_EVERY or not self._prune_lock.acquire(blocking=False):
            return
        try:
            self._pruned_at = now
            t = tables.dedupe_keys
            with self.store.engine.begin() as connection:
                connection.execute(
                    t.delete().where(
                        t.c.key.startswith(SEEN_PREFIX), t.c.created_at < now - SEEN_TTL
                    )
                )
        except Exception:  # pruning is tidying; the next one tries again
            logger.warning("could not prune old Slack delivery ids", exc_info=True)
        finally:
            self._prune_lock.release()


def allowed_response_url(url: object, hosts: list[str]) -> bool:
    """Whether `url` is a response URL Slack hands out (settings.slack_response_url_hosts):
    anything else would let a payload make the bot send requests wherever it names."""
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if host not in {h.lower() for h in hosts}:
        return False
    # Slack's are https; plain http only for a loopback stand-in named in the setting.
    return parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK)
