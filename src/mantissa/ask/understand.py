"""Understanding a question: time windows, entities, concepts, dimensions and intent.

The question is tokenized and matched against a phrase index (longest phrase first)
built from the vocabulary, the per-source hints and the values harvested from the
data. Every content word must be accounted for: a word the index does not know makes
the question *unmapped* (declined with what was understood), so that a constraint the
analyst wrote is never silently dropped.
"""

from __future__ import annotations

import datetime as dt
import difflib
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from mantissa.ask.lexicon import Lexicon, source_hints, split_words, vocabulary
from mantissa.ask.timerange import TimeRange, parse_time

# Words that carry no constraint (question scaffolding, verbs, articles ...).
FILLER: set[str] = set(vocabulary().get("filler", "").split())
NEGATORS = {
    "outside",
    "not",
    "non",
    "except",
    "excluding",
    "exclude",
    "other",
    "foreign",
    "besides",
}
DST_MARKERS = {"to", "destination", "dst", "towards", "toward", "target", "into"}
SRC_MARKERS = {"from", "source", "src", "by", "origin", "originating"}
USER_MARKERS = {"user", "username", "account", "principal", "users", "accounts", "identity"}

_IPV4 = r"(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}"
_IPV6 = r"(?:[0-9a-f]{1,4}:){2,7}[0-9a-f]{0,4}(?::[0-9a-f]{1,4})*"
_EMAIL = r"[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}"
_TOKEN = re.compile(
    rf"({_IPV4}/\d{{1,2}}|{_IPV4}|{_EMAIL}|{_IPV6}(?:/\d{{1,3}})?|\"[^\"]+\"|'[^']+'|[a-z0-9][a-z0-9_.\-:/]*[a-z0-9]|[a-z0-9])",
    re.I,
)


@dataclass
class Match:
    kind: str
    payload: Any
    text: str
    negated: bool = False
    role: str | None = None


@dataclass
class Understanding:
    """Everything recognized in a question, before mapping to tables."""

    question: str
    time: TimeRange | None = None
    more_times: list[TimeRange] = field(default_factory=list)
    matches: list[Match] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    intent: str = "search"
    by_dim: bool = False
    k: int | None = None
    quantile: float | None = None
    ascending: bool = False
    count_distinct: bool = False
    #: An APM relation the question asks about: ``callers`` / ``callees`` of a service,
    #: why it is ``slow`` (its slowest dependencies), or ``traces`` (one row per trace).
    apm: str | None = None

    def of(self, kind: str) -> list[Match]:
        return [m for m in self.matches if m.kind == kind]

    def words(self) -> list[str]:
        """What was understood, in words (for --explain and declines)."""
        out = []
        if self.time:
            out.append(f"time: {self.time.label}")
        for m in self.matches:
            if m.kind in ("filler",):
                continue
            neg = "not " if m.negated else ""
            out.append(f"{m.kind}: {neg}{m.text}")
        out.append(f"intent: {self.intent}")
        return out


# -- the phrase index --------------------------------------------------------------


@dataclass
class PhraseIndex:
    phrases: dict[tuple[str, ...], list[tuple[str, Any]]]
    max_len: int
    vocab: set[str]


def _tok(text: str) -> tuple[str, ...]:
    return tuple(
        t.lower() for t in re.findall(r"[a-z0-9][a-z0-9_.\-@]*[a-z0-9]|[a-z0-9]", text.lower())
    )


_INDEX_MEMO: dict[str, PhraseIndex] = {}


def phrase_index(lex: Lexicon) -> PhraseIndex:
    """The phrase index of a lexicon (cached per watermark)."""
    if lex.watermark in _INDEX_MEMO:
        return _INDEX_MEMO[lex.watermark]
    voc = vocabulary()
    hints = source_hints()
    phrases: dict[tuple[str, ...], list[tuple[str, Any]]] = {}

    def add(text: str, kind: str, payload: Any, front: bool = False) -> None:
        key = _tok(text)
        if not key:
            return
        lst = phrases.setdefault(key, [])
        if (kind, payload) not in lst:
            if front:
                lst.insert(0, (kind, payload))
            else:
                lst.append((kind, payload))

    # Exact event-type values first: "ConsoleLogin", "user.session.start".
    for info in lex.with_data():
        for v in info.event_types():
            add(v, "event_type", (info.name, v))
    for concept, words in (voc.get("concepts") or {}).items():
        for w in words:
            add(w, "concept", concept)
    for outcome, words in (voc.get("outcomes") or {}).items():
        for w in words:
            add(w, "outcome", outcome)
    for col, words in (voc.get("dimensions") or {}).items():
        for w in words:
            add(w, "dim", col)
    for bucket, words in (voc.get("time_buckets") or {}).items():
        for w in words:
            add(w, "bucket", bucket)
    for iso, names in (voc.get("countries") or {}).items():
        for w in names:
            add(w, "country", iso)
    for name, h in hints.items():
        if name not in lex.tables:
            continue
        add(name, "table", name)
        for w in h.get("words") or []:
            add(w, "table", name)
        for w in h.get("provider") or []:
            add(w, "provider", name)
        for w, col in (h.get("columns") or {}).items():
            add(w, "native_dim", (name, col))
        for w, col in (h.get("numeric") or {}).items():
            add(w, "measure", (name, col))
    for name in lex.tables:
        if name != "events":
            add(name, "table", name)
    add("events", "table_all", "events")
    for w in (
        "all sources",
        "every source",
        "across sources",
        "all logs",
        "everything",
        "all events",
    ):
        add(w, "table_all", "events")
    # Split event types ("create user") and services ("s3") after the vocabulary.
    for info in lex.with_data():
        for v in info.event_types():
            sw = split_words(v)
            if sw != v.lower():
                add(sw, "event_type", (info.name, v))
        for col in info.hints.get("value_columns") or []:
            # named values of a column ("process.cpu.utilization" of metrics.name), also
            # by their trailing words ("cpu utilization")
            for v in info.values.get(col, {}):
                add(v, "value", (info.name, col, v))
                words = split_words(v).split()
                for k in range(2, len(words) + 1):
                    add(" ".join(words[-k:]), "value", (info.name, col, v))
        svc_col = info.hints.get("service_column")
        for col in (svc_col, "service_name"):
            if not col:
                continue
            for v in info.values.get(col, {}):
                add(v, "service", (info.name, col, v))
                short = v.split(".")[0]
                if short and short != v:
                    add(short, "service", (info.name, col, v))
    users: set[str] = set()
    for info in lex.with_data():
        for v in info.values.get("user", {}):
            if v and len(v) <= 64:
                users.add(v)
    for u in sorted(users):
        add(u, "user", u)
        if "@" in u:
            add(u.split("@")[0], "user", u)
    for verb, words in (voc.get("actions") or {}).items():
        for w in words:
            if _tok(w) not in phrases:
                add(w, "action", verb)
    for obj, words in (voc.get("objects") or {}).items():
        for w in words:
            if _tok(w) not in phrases:
                add(w, "object", obj)
    add("root", "user", "root", front=True)
    add("root account", "user", "root", front=True)
    add("root user", "user", "root", front=True)
    add("the root account", "user", "root", front=True)
    vocab_words = {w for k in phrases for w in k} | FILLER
    idx = PhraseIndex(phrases, max(len(k) for k in phrases), vocab_words)
    _INDEX_MEMO.clear()
    _INDEX_MEMO[lex.watermark] = idx
    return idx


# -- intent --------------------------------------------------------------------------

_INTENT_RULES: list[tuple[str, str]] = [
    (
        "compare",
        r"\b(compare|compared|comparison|versus|vs\.?|against|relative to|week over week|"
        r"day over day|more or fewer|more or less|than (the )?(previous|prior|last|yesterday))\b",
    ),
    ("percentile", r"\b(p\d{2,3}|\d{1,2}(st|nd|rd|th)? percentile|percentiles?|median)\b"),
    (
        "last_seen",
        r"\b(last|most recent(ly)?|latest|newest)\b",
    ),
    (
        "first_seen",
        r"\b(first time|first seen|earliest|when (was|did|were) .*\bfirst\b|"
        r"first (used|login|logged|signed|appeared|seen|occurrence)|oldest)\b",
    ),
    (
        "top_k",
        r"\b(top|most|busiest|noisiest|heaviest|biggest|largest|highest|leading|"
        r"least|fewest|rarest|worst|most active|most frequent|most common)\b",
    ),
    (
        "breakdown",
        r"\b(per|break ?down|breakdown|grouped|group by|split by|distribution|"
        r"for each|broken down)\b",
    ),
    ("count", r"\b(how many|count|number of|total|how often|tally|volume)\b"),
]


def classify_intent(q: str, by_dim: bool = False) -> str:
    """The intent a question's wording signals (``q`` without its time words)."""
    text = q.lower()
    for intent, rx in _INTENT_RULES:
        if intent == "breakdown" and by_dim:
            return (
                "breakdown_count" if re.search(r"\b(how many|count|number of)\b", text) else intent
            )
        if re.search(rx, text):
            if intent == "breakdown" and re.search(r"\b(how many|count|number of)\b", text):
                return "breakdown_count"
            return intent
    if re.search(r"^\s*(when|what time)\b", text):
        return "last_seen"
    return "search"


# -- APM relations -------------------------------------------------------------------

_SVC = r"[a-z0-9][a-z0-9_.\-]*"
_CALL = r"(?:call|calls|invoke|invokes|use|uses|hit|hits|talk to|talks to|depend on|depends on|send requests to|sends requests to)"
# (intent, pattern); the words a pattern matched are removed before tokenizing, the
# service name (group ``svc``) is kept so it is matched as a service.
_APM_RULES: list[tuple[str, str]] = [
    (
        "slow",
        rf"\b(?:why\s+(?:is|are|was|were|does|do)\s+(?P<svc>{_SVC})(?:\s+service)?\s+"
        r"(?:so\s+|being\s+|running\s+|getting\s+)?(?:slow|slower|sluggish|lagging|degraded|"
        r"taking\s+so\s+long|have\s+high\s+latency|latency\s+so\s+high)"
        r"|what\s+(?:is\s+)?mak(?:es|ing)\s+(?P<svc2>" + _SVC + r")\s+slow(?:er)?"
        r"|where\s+does\s+(?P<svc3>" + _SVC + r")\s+spend\s+(?:its\s+)?time"
        r"|(?:root\s+)?cause\s+of\s+(?:the\s+)?(?P<svc4>" + _SVC + r")\s+(?:slowness|latency)"
        r"|(?P<svc5>" + _SVC + r")\s+(?:slowness|slowdown|latency\s+spike)\s+cause)\b",
    ),
    (
        "callees",
        rf"\b(?:(?:what|which)\s+(?:other\s+)?(?:services?\s+|dependencies\s+|apis?\s+)?"
        rf"(?:does|do|did)\s+(?P<svc>{_SVC})\s+{_CALL}"
        r"|(?:dependencies|downstream(?:\s+services)?|callees|outbound\s+calls)\s+(?:of|for|from)"
        r"|(?:called|used|invoked)\s+by"
        r"|(?P<svc2>"
        + _SVC
        + r")\s+(?:dependencies|depends\s+on\s+what|downstream(?:\s+services)?|callees)"
        r"|downstream\s+(?:of|from))\b",
    ),
    (
        "callers",
        rf"\b(?:(?:who|what|which)\s+(?:other\s+)?(?:services?\s+|clients?\s+|callers?\s+)?"
        rf"(?:is\s+|are\s+)?(?:{_CALL}|calling|invoking|depending\s+on|using|hitting)"
        r"|(?:callers|upstream(?:\s+services)?|clients|inbound\s+calls)\s+(?:of|for|to|into)"
        r"|upstream\s+(?:of|from))\b",
    ),
]


def apm_relation(text: str) -> tuple[str | None, str]:
    """``(relation, text without the relation words)`` for an APM question, or
    ``(None, text)``."""
    low = text.lower()
    for name, rx in _APM_RULES:
        m = re.search(rx, low)
        if not m:
            continue
        svc = next((g for k, g in m.groupdict().items() if g and k.startswith("svc")), None)
        keep = f" {svc} " if svc else " "
        return name, text[: m.start()] + keep + text[m.end() :]
    if re.search(r"\btraces\b", low) and not re.search(r"\bspans?\b", low):
        return "traces", text
    return None, text


# -- the parse -----------------------------------------------------------------------


def _classify_ip(text: str) -> tuple[str, str] | None:
    t = text.strip("\"'")
    try:
        if "/" in t:
            net = ipaddress.ip_network(t, strict=False)
            return ("cidr", str(net))
        ipaddress.ip_address(t)
        return ("ip", t)
    except ValueError:
        return None


def _fuzzy(word: str, vocab: set[str]) -> str | None:
    if len(word) < 5 or not word.isalpha():
        return None
    hits = difflib.get_close_matches(
        word, [v for v in vocab if abs(len(v) - len(word)) <= 2 and len(v) >= 4], n=1, cutoff=0.84
    )
    return hits[0] if hits else None


def understand(
    question: str, lex: Lexicon, now: dt.datetime | None = None, apm: bool = True
) -> Understanding:
    """Parse ``question`` against the lexicon."""
    q = question.strip()
    primary, more, rest = parse_time(q, now)
    u = Understanding(question=q, time=primary, more_times=more)
    if apm:
        u.apm, rest = apm_relation(rest)
    rest = re.sub(r"(?<=[A-Za-z])['’]s\b", "", rest)
    rest = re.sub(r"\bnon-(?=[A-Za-z])", "non ", rest, flags=re.I)
    rest = re.sub(r"\b\d+(st|nd|rd|th)\b", " ", rest)
    ports = [int(p) for p in re.findall(r"\bports?\s+(\d{1,5})\b", rest, re.I)]
    rest = re.sub(r"\bports?\s+\d{1,5}\b", " ", rest, flags=re.I)
    for p in ports:
        u.matches.append(Match("port", p, f"port {p}"))
    original_tokens = [m.group(0) for m in _TOKEN.finditer(rest)]
    tokens = [re.sub(r"'s$", "", t.lower()).strip("\"'") for t in original_tokens]
    idx = phrase_index(lex)

    # numbers and percentiles
    m = re.search(r"\bp(\d{2,3})\b", q.lower())
    if m:
        digits = m.group(1)
        u.quantile = int(digits) / (10 ** len(digits))
    m = m or re.search(r"\b(\d{1,2})(?:st|nd|rd|th)?[ -]percentile\b", q.lower())
    if m and u.quantile is None:
        u.quantile = int(m.group(1)) / 100
    if re.search(r"\bmedian\b", q.lower()):
        u.quantile = 0.5
    m = re.search(
        r"\b(?:top|first|bottom|the)\s+(\d{1,4})\b|\b(\d{1,4})\s+(?:most|least|busiest|noisiest|top|biggest|highest)\b",
        rest.lower(),
    )
    if m:
        u.k = int(m.group(1) or m.group(2))
    if re.search(r"\b(least|fewest|rarest|bottom|lowest)\b", q.lower()):
        u.ascending = True

    i = 0
    pending_neg = False
    pending_role: str | None = None
    pending_user_marker = False
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        if not tok:
            i += 1
            continue
        ipk = _classify_ip(tok)
        if ipk:
            u.matches.append(Match(ipk[0], ipk[1], tok, pending_neg, pending_role))
            pending_neg = False
            pending_role = None
            i += 1
            continue
        if re.fullmatch(_EMAIL, tok):
            u.matches.append(Match("email", tok, tok, pending_neg))
            pending_neg = False
            i += 1
            continue
        matched = False
        for length in range(min(idx.max_len, n - i), 0, -1):
            key = tuple(tokens[i : i + length])
            entries = idx.phrases.get(key)
            if not entries:
                continue
            kind, payload = entries[0]
            # "user alice" when alice is a known user, but "user" alone is a dimension
            if kind == "dim" and length == 1 and tok in USER_MARKERS and i + 1 < n:
                nxt = idx.phrases.get((tokens[i + 1],))
                if nxt and nxt[0][0] == "user":
                    i += 1
                    matched = True
                    break
            text = " ".join(key)
            if kind in ("dim", "native_dim", "bucket") and i > 0 and tokens[i - 1] in ("by", "per"):
                u.by_dim = True
            if (
                kind == "country"
                and length == 1
                and original_tokens[i] not in (text.upper(),)
                and len(text) == 2
            ):
                continue
            group = [e for e in entries if e[0] == kind]
            payload = (
                [p for _, p in group]
                if kind
                in (
                    "event_type",
                    "service",
                    "value",
                    "table",
                    "provider",
                    "native_dim",
                    "measure",
                    "user",
                )
                else payload
            )
            u.matches.append(
                Match(
                    kind,
                    payload,
                    text,
                    pending_neg
                    if kind
                    in ("country", "user", "event_type", "service", "value", "outcome", "concept")
                    else False,
                    pending_role,
                )
            )
            if kind in ("country", "user", "event_type", "service", "value", "outcome", "concept"):
                pending_neg = False
            i += length
            matched = True
            break
        if matched:
            continue
        # ISO country codes only when written in capitals ("from RU", "outside US").
        orig = original_tokens[i] if i < len(original_tokens) else tok
        iso = orig.strip("\"'")
        if len(iso) == 2 and iso.isupper() and iso in (vocabulary().get("countries") or {}):
            u.matches.append(Match("country", iso, iso, pending_neg))
            pending_neg = False
            i += 1
            continue
        if tok in NEGATORS:
            pending_neg = True
            i += 1
            continue
        if tok in DST_MARKERS:
            pending_role = "dst"
        elif tok in SRC_MARKERS:
            pending_role = "src"
        if tok in USER_MARKERS:
            pending_user_marker = True
            u.matches.append(Match("dim", "user", tok))
            i += 1
            continue
        if tok in FILLER or tok.isdigit():
            i += 1
            continue
        if pending_user_marker and re.fullmatch(r"[a-z0-9][a-z0-9._\-]{1,63}", tok):
            # "user svc-backup": an unknown name after "user" is a user name
            if u.matches and u.matches[-1].kind == "dim" and u.matches[-1].payload == "user":
                u.matches.pop()
            u.matches.append(Match("user", tok, tok, pending_neg))
            pending_neg = False
            pending_user_marker = False
            i += 1
            continue
        if orig.startswith(("'", '"')):
            u.matches.append(Match("literal", tok, tok, pending_neg))
            pending_neg = False
            i += 1
            continue
        fixed = _fuzzy(tok, idx.vocab)
        if fixed and fixed != tok:
            tokens[i] = fixed
            continue
        u.unknown.append(orig)
        i += 1
    _compose(u, tokens)
    intent = classify_intent(rest, u.by_dim)
    if intent != "compare" and re.search(_INTENT_RULES[0][1], q.lower()):
        intent = "compare"
    if intent == "breakdown_count":
        intent = "breakdown"
    u.intent = intent
    if u.k is None and intent == "top_k":
        for t in tokens:
            if t.isdigit() and 0 < int(t) <= 1000:
                u.k = int(t)
                break
    logins = [m for m in u.of("concept") if m.payload in ("login", "console_login")]
    if (
        logins
        and not u.of("outcome")
        and (
            intent in ("last_seen", "first_seen")
            or any(re.search(r"(logged|signed) (in|on)", m.text) for m in logins)
        )
    ):
        u.matches.append(Match("outcome", "success", "(a login means a successful one)"))
    if u.quantile is not None:
        u.intent = "percentile"
    if len(u.more_times) >= 1 and u.intent != "percentile":
        u.intent = "compare"
    if u.apm and not _about_traces(u):
        # "who uses the root account" is not a service call graph question
        return understand(question, lex, now, apm=False)
    return u


def _about_traces(u: Understanding) -> bool:
    tables: set[str] = set()
    for m in u.of("service"):
        tables.update(t for t, _, _ in m.payload)
    for m in u.of("table"):
        tables.update(m.payload)
    for m in u.of("native_dim") + u.of("measure"):
        tables.update(t for t, _ in m.payload)
    if u.apm == "traces":
        return True  # the word "traces" itself (possibly inside "error traces")
    return "traces" in {t for m in u.of("service") for t, _, _ in m.payload} or (
        not u.of("service") and "traces" in tables
    )


def _compose(u: Understanding, tokens: list[str]) -> None:
    """Verb + object → concept ("buckets were created" → bucket_created)."""
    voc = vocabulary()
    actions = voc.get("actions") or {}
    objects = voc.get("objects") or {}
    comps = voc.get("compositions") or {}
    verbs = [m for m in u.matches if m.kind == "action"]
    if not verbs:
        return
    obj_of: dict[str, str] = {}
    for obj, words in objects.items():
        for w in words:
            obj_of[w] = obj
    for verb in verbs:
        found = None
        for m in u.matches:
            if m is verb:
                continue
            obj = obj_of.get(m.text)
            if obj and obj in (comps.get(verb.payload) or {}):
                found = (m, comps[verb.payload][obj])
                break
        u.matches.remove(verb)
        if found is None:
            if not u.of("concept") and not u.of("event_type"):
                u.unknown.append(verb.text)
            continue
        m, concept = found
        u.matches.append(Match("concept", concept, f"{verb.text} {m.text}", verb.negated))
        keep_as_dim = m.kind in ("dim", "native_dim") and re.search(
            rf"\b(which|what)\s+{re.escape(m.text)}\b", u.question.lower()
        )
        if not keep_as_dim and m in u.matches:
            u.matches.remove(m)
    _ = actions
