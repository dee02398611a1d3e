"""Loading Sigma rules: the built-in library, user folders, and an index over them.

Rules are Sigma YAML parsed and validated by pySigma. Files live in
``<dir>/<source>/<name>.yml`` (the built-in library ships in the package under
``mantissa/rules/sigma/``; users add ``<data-dir>/rules/sigma/`` and ``detect.rule_paths``);
``<name>.samples.yml`` beside a rule holds its test events. Every problem is reported with
file and line: YAML syntax, Sigma schema, a logsource that maps to no table (unsupported,
never silently dropped). The module reference's aggregation form
(``condition: selection | count() by user > 10`` with ``timeframe: 5m``) is accepted and
turned into a windowed GROUP BY; pySigma itself only knows correlation rules.
"""

from __future__ import annotations

import copy
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.rule import SigmaRule

from mantissa.detect.correlation import Aggregation, parse_aggregation, parse_duration
from mantissa.detect.pipelines import DetectConfig, LogsourceMap, detect_config
from mantissa.errors import ConfigError, NotFound

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "rules" / "sigma"
SAMPLES_SUFFIX = ".samples.yml"
ENABLED_NS = "detect.rule_enabled"
DEFAULT_INTERVAL = {
    "critical": "5m",
    "high": "5m",
    "medium": "15m",
    "low": "1h",
    "informational": "24h",
}


class RuleError(ConfigError):
    """A rule file that cannot be used; the message names the file and line."""

    code = "rule_error"


@dataclass
class RuleIssue:
    path: str
    line: int | None
    message: str
    kind: str = "invalid"  # invalid | unsupported
    rule_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "rule_id": self.rule_id,
            "error": self.message,
        }


@dataclass
class Rule:
    """One Sigma rule (or correlation rule) of the index."""

    id: str
    title: str
    level: str
    status: str
    tags: list[str]
    logsource: dict[str, str | None]
    path: str
    yaml_text: str
    enabled: bool
    table: str | None
    description: str = ""
    name: str | None = None
    kind: str = "rule"  # rule | correlation
    aggregation: Aggregation | None = None
    interval_secs: int = 900
    builtin: bool = False
    line: int = 1
    sigma: SigmaRule | SigmaCorrelationRule | None = field(default=None, repr=False)
    references: list[str] = field(default_factory=list)  # correlation: referenced rule ids
    generate: bool = True  # False: only feeds a correlation rule

    @property
    def attack(self) -> list[str]:
        return [t for t in self.tags if t.startswith("attack.")]

    def fresh_sigma(self) -> SigmaRule | SigmaCorrelationRule:
        """A private copy of the parsed rule (pySigma pipelines modify rules in place)."""
        assert self.sigma is not None
        return copy.deepcopy(self.sigma)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "level": self.level,
            "status": self.status,
            "tags": self.tags,
            "logsource": self.logsource,
            "table": self.table,
            "kind": self.kind,
            "enabled": self.enabled,
            "interval_secs": self.interval_secs,
            "path": self.path,
            "builtin": self.builtin,
        }


def _line_of(text: str, needle: str | None) -> int | None:
    if not needle:
        return None
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    return None


def _error_line(text: str, err: Exception, doc_start: int = 1) -> int | None:
    src = getattr(err, "source", None)
    if isinstance(src, SigmaRuleLocation) and src.line:
        return src.line
    msg = str(err)
    for needle in re.findall(r"'([^']+)'", msg):
        line = _line_of(text, needle.split("|")[-1]) or _line_of(text, needle)
        if line:
            return line
    if "condition" in msg.lower():
        return _line_of(text, "condition:")
    if "logsource" in msg.lower():
        return _line_of(text, "logsource:")
    return doc_start


def _strip_aggregations(doc: dict[str, Any]) -> Aggregation | None:
    """Split ``selection | count() by x > N`` into the plain condition and an aggregation."""
    det = doc.get("detection")
    if not isinstance(det, dict):
        return None
    cond = det.get("condition")
    conds = cond if isinstance(cond, list) else [cond]
    agg = None
    out = []
    for c in conds:
        if isinstance(c, str) and "|" in c:
            base, _, tail = c.partition("|")
            agg = parse_aggregation(tail, det.get("timeframe") or doc.get("timeframe"))
            out.append(base.strip())
        else:
            out.append(c)
    if agg is not None:
        det["condition"] = out if isinstance(cond, list) else out[0]
        det.pop("timeframe", None)
    return agg


def _sigma_level(rule: SigmaRule | SigmaCorrelationRule) -> str:
    lvl = rule.level.name.lower() if rule.level else "medium"
    return "informational" if lvl == "informational" else lvl


class RuleIndex:
    """All rules by id, with their problems (invalid / unsupported) kept beside them."""

    def __init__(
        self,
        rules: list[Rule],
        issues: list[RuleIssue],
        runtime: Any = None,
        cfg: DetectConfig | None = None,
    ) -> None:
        self.rules = rules
        self.issues = issues
        self.runtime = runtime
        self.cfg = cfg or DetectConfig()
        self._by_id = {r.id: r for r in rules}
        self._by_name = {r.name: r for r in rules if r.name}
        self._compiled: dict[str, Any] = {}

    # -- loading --------------------------------------------------------------------
    @classmethod
    def load(cls, runtime: Any = None, paths: list[str | Path] | None = None) -> RuleIndex:
        """Load the built-in library, ``<data-dir>/rules/sigma`` and ``detect.rule_paths``.

        With ``paths``, load exactly those files or folders instead.
        """
        cfg = detect_config(runtime)
        lmap = LogsourceMap.from_config(cfg)
        enabled: dict[str, bool] = {}
        if runtime is not None:
            enabled = runtime.state.items(ENABLED_NS)
        files: list[tuple[Path, bool]] = []
        if paths is not None:
            for p in paths:
                files += [(f, False) for f in rule_files(Path(p))]
        else:
            if cfg.builtin_rules:
                files += [(f, True) for f in rule_files(BUILTIN_DIR)]
            if runtime is not None:
                files += [(f, False) for f in rule_files(runtime.data_dir / "rules" / "sigma")]
            for p in cfg.rule_paths:
                files += [(f, False) for f in rule_files(Path(p))]
        rules: list[Rule] = []
        issues: list[RuleIssue] = []
        for f, builtin in files:
            r, i = load_file(f, lmap, cfg, enabled, builtin)
            rules += r
            issues += i
        index = cls([], issues, runtime, cfg)
        seen: dict[str, Rule] = {}
        for r in rules:
            if r.id in seen:
                # a user rule with a built-in id overrides it
                if seen[r.id].builtin and not r.builtin:
                    seen[r.id] = r
                    continue
                issues.append(
                    RuleIssue(
                        r.path,
                        r.line,
                        f"duplicate rule id {r.id} (also in {seen[r.id].path})",
                        rule_id=r.id,
                    )
                )
                continue
            seen[r.id] = r
        index.rules = list(seen.values())
        index._by_id = {r.id: r for r in index.rules}
        index._by_name = {r.name: r for r in index.rules if r.name}
        index._link_correlations()
        return index

    def _link_correlations(self) -> None:
        sigma_rules = [r.sigma for r in self.rules if r.sigma is not None]
        for r in self.rules:
            if r.kind != "correlation" or not isinstance(r.sigma, SigmaCorrelationRule):
                continue
            try:
                r.sigma.resolve_rule_references(SigmaCollection(sigma_rules))
            except SigmaError as exc:
                self.issues.append(RuleIssue(r.path, r.line, str(exc), rule_id=r.id))
                r.table = None
                continue
            refs = []
            for ref in r.sigma.rules or []:
                target = self.get_optional(ref.reference)
                if target is not None:
                    refs.append(target.id)
                    if not r.sigma.generate:
                        target.generate = False
            r.references = refs
            tables = {self._by_id[x].table for x in refs}
            r.table = ",".join(sorted(t for t in tables if t)) or None

    # -- queries --------------------------------------------------------------------
    def get_optional(self, ref: str) -> Rule | None:
        return self._by_id.get(ref) or self._by_name.get(ref)

    def get(self, rule_id: str) -> Rule:
        r = self.get_optional(rule_id)
        if r is None:
            raise NotFound(f"no rule {rule_id!r}", hint="`mantissa rules list` shows rule ids")
        return r

    def select(
        self,
        ids: list[str] | None = None,
        tags: list[str] | None = None,
        level: str | None = None,
        status: str | None = None,
        table: str | None = None,
        enabled: bool | None = None,
    ) -> list[Rule]:
        out = self.rules
        if ids:
            wanted = [self.get(i) for i in ids]
            out = [r for r in out if r in wanted]
        if tags:
            low = [t.lower() for t in tags]
            out = [r for r in out if any(t.lower() in low for t in r.tags)]
        if level:
            out = [r for r in out if r.level == level]
        if status:
            out = [r for r in out if r.status == status]
        if table:
            out = [r for r in out if r.table and table in r.table.split(",")]
        if enabled is not None:
            out = [r for r in out if r.enabled == enabled]
        return out

    def by_tag(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in self.rules:
            for t in r.tags:
                out.setdefault(t, []).append(r.id)
        return out

    def compiled(self, rule: Rule) -> Any:
        """The rule compiled to a query plan (cached per index)."""
        from mantissa.detect.query import compile_rule

        if rule.id not in self._compiled:
            self._compiled[rule.id] = compile_rule(rule, self)
        return self._compiled[rule.id]

    # -- changes ------------------------------------------------------------------------
    def _user_dir(self) -> Path:
        if self.runtime is None:
            raise ConfigError("saving rules needs a data directory")
        return Path(self.runtime.data_dir) / "rules" / "sigma"

    def save(self, rule_yaml: str) -> Rule:
        """Validate ``rule_yaml`` and store it as a user rule; returns the rule."""
        lmap = LogsourceMap.from_config(self.cfg)
        tmp_path = Path("<new rule>")
        rules, issues = parse_text(rule_yaml, tmp_path, lmap, self.cfg, {}, False)
        bad = [i for i in issues if i.kind == "invalid"] or issues
        if bad or not rules:
            first = bad[0] if bad else RuleIssue(str(tmp_path), None, "no rule in the document")
            raise RuleError(f"line {first.line}: {first.message}")
        rule = rules[0]
        sub = (rule.table or "other").split(",")[0]
        dest = self._user_dir() / sub / f"{_safe(rule.id)}.yml"
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        tmp.write_text(rule_yaml)
        tmp.replace(dest)
        rule.path = str(dest)
        old = self._by_id.get(rule.id)
        if old is not None:
            self.rules.remove(old)
        self.rules.append(rule)
        self._by_id[rule.id] = rule
        self._compiled.pop(rule.id, None)
        return rule

    def delete(self, rule_id: str) -> None:
        rule = self.get(rule_id)
        if rule.builtin:
            raise RuleError(
                f"rule {rule_id} is built in and cannot be deleted", hint="disable it instead"
            )
        Path(rule.path).unlink(missing_ok=True)
        self.rules.remove(rule)
        self._by_id.pop(rule.id, None)
        self._compiled.pop(rule.id, None)

    def set_enabled(self, rule_id: str, enabled: bool) -> Rule:
        rule = self.get(rule_id)
        if self.runtime is not None:
            self.runtime.state.put(ENABLED_NS, rule.id, bool(enabled))
        rule.enabled = bool(enabled)
        return rule


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)


def rule_files(path: Path) -> list[Path]:
    """Rule files under ``path`` (a file or a folder), sample files excluded."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(
        p
        for p in path.rglob("*")
        if p.suffix in (".yml", ".yaml") and not p.name.endswith((SAMPLES_SUFFIX, ".samples.yaml"))
    )


def load_file(
    path: Path,
    lmap: LogsourceMap,
    cfg: DetectConfig,
    enabled: dict[str, bool],
    builtin: bool = False,
) -> tuple[list[Rule], list[RuleIssue]]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        return [], [RuleIssue(str(path), None, f"cannot read: {exc}")]
    return parse_text(text, path, lmap, cfg, enabled, builtin)


def parse_text(
    text: str,
    path: Path,
    lmap: LogsourceMap,
    cfg: DetectConfig,
    enabled: dict[str, bool],
    builtin: bool = False,
) -> tuple[list[Rule], list[RuleIssue]]:
    """Parse one file's text into rules (and the problems found, with lines)."""
    issues: list[RuleIssue] = []
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return [], [
            RuleIssue(
                str(path),
                mark.line + 1 if mark else None,
                f"invalid YAML: {getattr(exc, 'problem', exc)}",
            )
        ]
    if not docs:
        return [], [RuleIssue(str(path), 1, "empty rule file")]
    aggs: list[Aggregation | None] = []
    for d in docs:
        if not isinstance(d, dict):
            return [], [RuleIssue(str(path), 1, "a Sigma rule must be a YAML mapping")]
        try:
            aggs.append(_strip_aggregations(d) if "correlation" not in d else None)
        except ConfigError as exc:
            return [], [
                RuleIssue(str(path), _line_of(text, "condition:"), exc.message, rule_id=d.get("id"))
            ]
    raw_docs = copy.deepcopy(docs)
    native_ids = _reference_compat(docs)
    loc = SigmaRuleLocation(path)
    try:
        coll = SigmaCollection.from_dicts(
            docs, collect_errors=True, source=loc, resolve_references=False
        )
    except SigmaError as exc:
        return [], [RuleIssue(str(path), _error_line(text, exc), str(exc))]
    rules: list[Rule] = []
    for n, srule in enumerate(coll.rules):
        doc = raw_docs[n] if n < len(raw_docs) else {}
        if srule.errors:
            for err in srule.errors:
                issues.append(
                    RuleIssue(
                        str(path), _error_line(text, err), str(err), rule_id=str(srule.id or "")
                    )
                )
            continue
        if isinstance(srule, SigmaRule):
            try:
                for cond in srule.detection.parsed_condition:
                    cond.parse()
            except SigmaError as exc:
                issues.append(
                    RuleIssue(
                        str(path), _error_line(text, exc), str(exc), rule_id=str(srule.id or "")
                    )
                )
                continue
        rid = str(srule.id) if srule.id else (srule.name or path.stem)
        rid = native_ids.get(n, rid)
        if isinstance(srule, SigmaCorrelationRule):
            kind, table, logsource = "correlation", None, {}
        else:
            ls = srule.logsource
            logsource = {"product": ls.product, "service": ls.service, "category": ls.category}
            kind = "rule"
            table = lmap.table_for(ls.product, ls.service, ls.category)
            if table is None:
                issues.append(
                    RuleIssue(
                        str(path),
                        _line_of(text, "logsource:"),
                        "logsource "
                        + "/".join(str(v) for v in logsource.values() if v)
                        + " maps to no table (add it under detect.logsources)",
                        kind="unsupported",
                        rule_id=rid,
                    )
                )
        level = _sigma_level(srule)
        status = srule.status.name.lower() if srule.status else "experimental"
        default_on = status not in ("deprecated", "unsupported")
        agg = aggs[n] if n < len(aggs) else None
        interval = (
            cfg.intervals.get(rid)
            or srule.custom_attributes.get("interval")
            or cfg.default_interval
            if rid in cfg.intervals or "interval" in srule.custom_attributes
            else DEFAULT_INTERVAL.get(level, cfg.default_interval)
        )
        rules.append(
            Rule(
                id=rid,
                title=srule.title,
                level=level,
                status=status,
                tags=[str(t) for t in srule.tags],
                logsource=logsource,
                path=str(path),
                yaml_text=text,
                enabled=bool(enabled.get(rid, default_on))
                and (table is not None or kind == "correlation"),
                table=table,
                description=(srule.description or "").strip(),
                name=srule.name,
                kind=kind,
                aggregation=agg,
                interval_secs=int(parse_duration(str(interval))),
                builtin=builtin,
                line=_line_of(text, f"id: {rid}") or 1,
                sigma=srule,
            )
        )
        del doc
    for err in coll.errors:
        if not any(err is e for r in coll.rules for e in r.errors):
            issues.append(RuleIssue(str(path), _error_line(text, err), str(err)))
    return rules, issues


def new_rule_id() -> str:
    return str(uuid.uuid4())


def _reference_compat(docs: list[Any]) -> dict[int, str]:
    """Accept the module reference's rule spelling (``id: apm-error-payment-001``, bare
    tags like ``apm``), which pySigma rejects: a non-UUID id is kept as the rule's id and
    given a stable UUID for pySigma; a bare tag gets the ``mantissa.`` namespace."""
    native: dict[int, str] = {}
    for n, d in enumerate(docs):
        if not isinstance(d, dict):
            continue
        rid = d.get("id")
        if isinstance(rid, str) and rid.strip():
            try:
                uuid.UUID(rid)
            except ValueError:
                native[n] = rid
                d["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, "mantissa-rule:" + rid))
        tags = d.get("tags")
        if isinstance(tags, list):
            d["tags"] = [t if not isinstance(t, str) or "." in t else f"mantissa.{t}" for t in tags]
    return native


# pySigma's own validators that need no downloaded data (the ATT&CK / D3FEND tag validators
# fetch MITRE data at run time, so they are left out: validation must work offline).
OFFLINE_VALIDATORS = (
    "DanglingDetectionValidator",
    "DanglingConditionValidator",
    "ThemConditionWithSingleDetectionValidator",
    "AllOfThemConditionValidator",
    "IdentifierExistenceValidator",
    "DuplicateTagValidator",
    "InvalidModifierCombinationsValidator",
    "DoubleWildcardValidator",
    "NumberAsStringValidator",
    "ControlCharacterValidator",
    "WildcardsInsteadOfModifiersValidator",
    "EscapedWildcardValidator",
    "TagFormatValidator",
)


def lint(index: RuleIndex) -> list[RuleIssue]:
    """Warnings from pySigma's offline validators (the rule still loads and runs)."""
    import importlib

    from sigma.validation import SigmaValidator

    found: dict[str, Any] = {}
    for mod in ("condition", "metadata", "modifiers", "tags", "values"):
        m = importlib.import_module(f"sigma.validators.core.{mod}")
        found.update({n: getattr(m, n) for n in OFFLINE_VALIDATORS if hasattr(m, n)})
    classes = list(found.values())
    validator = SigmaValidator(classes)
    out: list[RuleIssue] = []
    for rule in index.rules:
        if not isinstance(rule.sigma, SigmaRule):
            continue
        try:
            issues = validator.validate_rule(copy.deepcopy(rule.sigma))
        except Exception as exc:  # a validator bug must not hide the rule
            issues = []
            out.append(
                RuleIssue(rule.path, rule.line, f"validator failed: {exc}", "warning", rule.id)
            )
        for issue in issues:
            out.append(
                RuleIssue(
                    rule.path,
                    rule.line,
                    f"{type(issue).__name__}: {issue.description}",
                    "warning",
                    rule.id,
                )
            )
    return out
