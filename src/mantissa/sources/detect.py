"""Auto-detection: which source a file is, from its first lines. Never a silent guess."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from mantissa.errors import SourceError
from mantissa.lake.reader import expand_paths
from mantissa.sources.base import registry

SAMPLE_BYTES = 256 * 1024
MIN_SCORE = 0.6
MARGIN = 0.15


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
    text = data.decode("utf-8", errors="replace")
    stripped = text.lstrip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if stripped.startswith(("{", "[")) and lines:
        # a pretty-printed JSON document: try to parse what we have as a whole
        import json

        try:
            return [json.dumps(json.loads(text))]
        except ValueError:
            pass
    return lines[:50]


def detect_source(paths: list[str]) -> Detection:
    """Pick the source of ``paths`` or raise :class:`SourceError` when unsure."""
    files = [p for p in expand_paths(paths) if p != "-"]
    if not files:
        raise SourceError("cannot detect the source of stdin", hint="pass --source")
    sample: list[str] = []
    for f in files[:5]:
        sample.extend(_sample(f))
    scores = sorted(((cls().sniff(sample), name) for name, cls in registry().items()), reverse=True)
    best_score, best = scores[0]
    second_score, second = scores[1] if len(scores) > 1 else (0.0, None)
    if best_score < MIN_SCORE:
        raise SourceError(
            "could not recognise the log format",
            hint="pass --source; `mantissa sources` lists them",
        )
    if best_score - second_score < MARGIN:
        raise SourceError(
            f"ambiguous input: looks like {best} ({best_score:.0%}) or {second} "
            f"({second_score:.0%})",
            hint=f"pass --source {best} or --source {second}",
        )
    return Detection(best, best_score, second, second_score)
