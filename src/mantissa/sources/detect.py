"""Auto-detection: which source a set of files is, from their content. Never a silent guess.

Each sampled file (up to :data:`MAX_FILES`, spread over the set) is scored by every
source: the source's own :meth:`~mantissa.sources.base.Source.sniff` and, for JSON
sources, the share of sampled objects carrying all of its ``signature`` keys (matched
case-insensitively, inside wrapper documents and envelopes too). Scores are averaged over
the files. The generic ``json_lines`` source only wins when no specific source is sure.
When two specific sources score alike the input is ambiguous and ``--source`` is asked
for, unless one's signature strictly contains the other's (the more specific one wins).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

from mantissa.errors import SourceError
from mantissa.lake.reader import expand_paths
from mantissa.sources.base import JsonSource, Source, registry

SAMPLE_BYTES = 256 * 1024
MAX_FILES = 12
MIN_SCORE = 0.6
MARGIN = 0.15
#: sources that accept any input of their framing: chosen only when nothing specific is
FALLBACKS = ("json_lines",)
_ENVELOPES = ("detail", "Message", "event", "properties")
_WRAPPERS = ("Records", "records", "value", "entries", "items", "Findings", "configurationItems")


@dataclass
class Detection:
    source: str
    score: float
    runner_up: str | None
    runner_up_score: float


def _sample(path: str) -> list[str]:
    with open(path, "rb") as fh:
        data = fh.read(SAMPLE_BYTES)
    if data[:2] == b"\x1f\x8b":
        try:
            data = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(data, SAMPLE_BYTES * 4)
        except zlib.error:
            return []
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    stripped = text.lstrip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if stripped.startswith(("{", "[")) and lines:
        # a pretty-printed JSON document: try to parse what we have as a whole
        try:
            json.loads(lines[0])
        except ValueError:
            try:
                return [json.dumps(json.loads(text))]
            except ValueError:
                pass
    return lines[:50]


def sample_objects(sample: list[str], wrappers: tuple[str, ...]) -> list[dict[str, Any]]:
    """The JSON objects of a sample: arrays and wrapper documents expanded (5 per line)."""
    out: list[dict[str, Any]] = []
    for line in sample:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        items: list[Any] = obj if isinstance(obj, list) else [obj]
        expanded: list[Any] = []
        for it in items:
            if isinstance(it, dict):
                for k in (*wrappers, *_WRAPPERS):
                    if isinstance(it.get(k), list):
                        expanded.extend(it[k])
                        break
                else:
                    expanded.append(it)
        out.extend(o for o in expanded[:5] if isinstance(o, dict))
    return out


def _keys(obj: dict[str, Any], lower: bool = True) -> set[str]:
    """Top-level keys of ``obj`` and of the payload of its envelope, if any."""

    def norm(k: str) -> str:
        return k.lower() if lower else k

    keys = {norm(k) for k in obj}
    for env in _ENVELOPES:
        inner = obj.get(env)
        if isinstance(inner, str) and inner.startswith("{"):
            try:
                inner = json.loads(inner)
            except ValueError:
                inner = None
        if isinstance(inner, dict):
            keys |= {norm(k) for k in inner}
            # Azure diagnostic exports carry the payload as a JSON string in properties.log
            log = inner.get("log")
            if isinstance(log, str) and log.startswith("{"):
                try:
                    keys |= {norm(k) for k in json.loads(log)}
                except (ValueError, AttributeError):
                    pass
    return keys


def _structure_keys(src: JsonSource) -> set[str]:
    return {k.lower() for k in src.structure}


def _signature_score(src: JsonSource, sample: list[str]) -> float:
    """Share of objects with all signature keys (case-insensitive matches count half),
    or failing that how much of each object's top-level keys the source knows."""
    objs = sample_objects(sample, src.wrapper_keys)
    if not objs:
        return 0.0
    sig = set(src.signature)
    lsig = {k.lower() for k in sig}
    known = _structure_keys(src)
    total = 0.0
    for o in objs:
        if sig and sig <= _keys(o, lower=False):
            total += 1.0
            continue
        keys = _keys(o)
        part = 0.5 if lsig and lsig <= keys else 0.0
        vendor = {k for k in keys if not k.startswith("p_")}  # Panther enrichment keys
        if known and len(vendor & known) >= 3:
            part = max(part, 0.8 * len(vendor & known) / len(vendor))
        total += part
    return total / len(objs)


def score(src: Source, sample: list[str]) -> float:
    """How sure ``src`` is that ``sample`` (lines of one file) is its format, in [0, 1].

    A JSON source with a sniffer of its own decides alone; the others are scored on
    their signature and structure keys.
    """
    try:
        s = src.sniff(sample)
    except Exception:  # a sniffer must never break detection of the others
        s = 0.0
    if isinstance(src, JsonSource) and type(src).sniff is JsonSource.sniff:
        s = max(s, _signature_score(src, sample))
    return max(0.0, min(1.0, s))


def _spread(files: list[str], n: int) -> list[str]:
    if len(files) <= n:
        return files
    step = len(files) / n
    return [files[int(i * step)] for i in range(n)]


def _more_specific(a: Source, b: Source) -> bool:
    """``a``'s signature strictly contains ``b``'s: matching ``a`` says more than ``b``."""
    if not isinstance(a, JsonSource) or not isinstance(b, JsonSource):
        return False
    sa = {k.lower() for k in a.signature}
    sb = {k.lower() for k in b.signature}
    return bool(sb) and sb < sa


def detect_source(paths: list[str]) -> Detection:
    """Pick the source of ``paths`` or raise :class:`SourceError` when unsure."""
    files = [p for p in expand_paths(paths) if p != "-"]
    if not files:
        raise SourceError("cannot detect the source of stdin", hint="pass --source")
    samples = [s for s in (_sample(f) for f in _spread(files, MAX_FILES)) if s]
    if not samples:
        raise SourceError("the input is empty: nothing to detect", hint="pass --source")
    sources = {name: cls() for name, cls in registry().items()}
    per_file = [{name: score(src, smp) for name, src in sources.items()} for smp in samples]

    def best_specific(f: dict[str, float]) -> tuple[float, str]:
        return max((v, n) for n, v in f.items() if n not in FALLBACKS)

    recognised = [f for f in per_file if best_specific(f)[0] >= MIN_SCORE]
    if recognised:
        # files no specific source recognises (sidecars, READMEs, reference outputs) are
        # left out; files recognised as different sources make the input ambiguous
        per_file = recognised
        wins: dict[str, int] = {}
        for f in recognised:
            name = best_specific(f)[1]
            wins[name] = wins.get(name, 0) + 1
        top = sorted(((c, n) for n, c in wins.items()), reverse=True)
        if len(top) > 1 and top[1][0] >= max(1, len(recognised) / 4):
            (ca, a), (cb, b) = top[0], top[1]
            if not (
                _more_specific(sources[a], sources[b]) or _more_specific(sources[b], sources[a])
            ):
                raise SourceError(
                    f"mixed input: {ca} file(s) look like {a} and {cb} like {b}",
                    hint=f"ingest them separately, with --source {a} and --source {b}",
                )
    else:
        per_file = [f for f in per_file if max(f.values()) >= 0.1] or per_file
    totals = {name: sum(f[name] for f in per_file) / len(per_file) for name in sources}
    specific = sorted(((s, n) for n, s in totals.items() if n not in FALLBACKS), reverse=True)
    fallback = sorted(((s, n) for n, s in totals.items() if n in FALLBACKS), reverse=True)
    best_score, best = specific[0] if specific else (0.0, "")
    second_score, second = specific[1] if len(specific) > 1 else (0.0, None)
    if best_score < MIN_SCORE:
        if fallback and fallback[0][0] >= MIN_SCORE:
            fs, fname = fallback[0]
            return Detection(fname, fs, best or None, best_score)
        raise SourceError(
            "could not recognise the log format"
            + (f" (closest: {best}, {best_score:.0%})" if best else ""),
            hint="pass --source; `mantissa sources` lists them",
        )
    # a confident match whose signature contains the best one's is the more specific
    for sc, name in specific[1:]:
        if sc >= MIN_SCORE and _more_specific(sources[name], sources[best]):
            others = [(s2, n2) for s2, n2 in specific if n2 != name]
            best_score, best = sc, name
            second_score, second = others[0] if others else (0.0, None)
            return Detection(best, best_score, second, second_score)
    if second is not None and best_score - second_score < MARGIN:
        a, b = sources[best], sources[second]
        if _more_specific(b, a):
            best, second = second, best
            best_score, second_score = second_score, best_score
        elif not _more_specific(a, b):
            raise SourceError(
                f"ambiguous input: looks like {best} ({best_score:.0%}) or {second} "
                f"({second_score:.0%})",
                hint=f"pass --source {best} or --source {second}",
            )
    return Detection(best, best_score, second, second_score)
