"""Template sandbox: escape and denial-of-service probes must all be blocked, fast.

Includes the published Jinja2 sandbox escapes: str.format (CVE-2016-10745), format_map
(CVE-2019-10906), the ``|attr`` filter reaching ``str.format`` (CVE-2024-56326,
CVE-2025-27516), and the classic ``__class__.__mro__`` / ``__subclasses__`` / ``__globals__``
walks, cycler/joiner/namespace/lipsum globals, and DoS by repetition, exponent, padding,
range and nested loops."""

from __future__ import annotations

import time
from typing import Any

import pytest

from mantissa.soar import templates
from mantissa.soar.templates import TemplateRejected

CTX = {
    "input": {"user": "bob", "n": 3, "s": "x" * 1000, "l": list(range(100))},
    "alert": {"id": "a1", "entities": {"user": "bob"}},
    "vars": {"x": "y"},
    "steps": {"a": {"output": {"k": "v"}, "status": "succeeded"}},
    "item": "i",
}

PROBES = [
    # attribute walks to Python internals
    "{{ input.__class__ }}",
    "{{ input.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ input['__class__'] }}",
    "{{ input.user.__class__.__base__ }}",
    "{{ alert.__dict__ }}",
    "{{ vars.__init__.__globals__ }}",
    "{{ input.items.__self__ }}",
    "{{ input.keys().__class__ }}",
    "{{ input.user.upper.__globals__ }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ [].__class__.__base__.__subclasses__()[40]('/etc/passwd').read() }}",
    "{{ request.application.__globals__.__builtins__ }}",
    "{{ config.items() }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ input | attr('__class__') }}",
    "{{ input | attr('__class__') | attr('__mro__') }}",
    "{{ (input.user | attr('format'))('{0.__class__}') }}",
    # str.format escapes (CVE-2016-10745, CVE-2019-10906, CVE-2024-56326, CVE-2025-27516)
    "{{ '{0.__class__.__mro__}'.format(input) }}",
    "{{ '{0.__class__}'.format_map({'0': input}) }}",
    "{{ input.user.format('{}') }}",
    "{{ ('{0.__class__}' | attr('format'))(input) }}",
    "{{ '%s' % input.__class__ }}",
    # globals that must not exist
    "{{ range(10) }}",
    "{{ lipsum() }}",
    "{{ cycler(1,2).__init__.__globals__ }}",
    "{{ joiner().__init__.__globals__.os }}",
    "{{ namespace().__init__.__globals__ }}",
    "{{ dict(a=1) }}",
    "{{ os.system('id') }}",
    "{{ __import__('os').system('id') }}",
    "{{ url_for.__globals__ }}",
    "{{ get_flashed_messages.__globals__ }}",
    # statements that must not compile
    "{% for x in input.l %}{% for y in input.l %}{% for z in input.l %}.{% endfor %}{% endfor %}{% endfor %}",
    "{% set x = 1 %}{{ x }}",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}",
    "{% extends '/etc/passwd' %}",
    "{% with a = 1 %}{{ a }}{% endwith %}",
    "{% filter upper %}x{% endfilter %}",
    "{% raw %}{% endraw %}{{ input.__class__ }}",
    # calls of any kind
    "{{ input.user.upper() }}",
    "{{ input.get('user') }}",
    "{{ input.update({'a': 1}) }}",
    "{{ input.l.append(1) }}",
    "{{ input.l.pop() }}",
    "{{ input.l.clear() }}",
    "{{ vars.setdefault('a', 1) }}",
    # filters not on the allow-list
    "{{ input | pprint }}",
    "{{ input.l | map('attr', '__class__') | list }}",
    "{{ input | xmlattr }}",
    "{{ input.s | center(999999999) }}",
    "{{ input.s | indent(999999999) }}",
    "{{ input.s | wordwrap(1) }}",
    "{{ input.l | batch(3) | list }}",
    "{{ input | dictsort }}",
    "{{ input.l | selectattr('__class__') | list }}",
    "{{ input.s | format(1) }}",
    # denial of service
    "{{ 'x' * 1000000000 }}",
    "{{ input.s * 100000 }}",
    "{{ input.l * 100000 }}",
    "{{ 9 ** 9 ** 9 }}",
    "{{ 2 ** 100000 }}",
    "{{ '%999999999s' % 1 }}",
    "{{ input.s | replace('x', input.s) }}",
    "{{ input.s | replace('', input.s) }}",
    "{{ (input.s ~ input.s) * 1000 }}",
    "{{ 10 ** 400 }}",
    "{{ [input.l] * 1000000 }}",
    "{{ input.s ~ input.s ~ input.s ~ input.s ~ input.s ~ input.s ~ input.s ~ input.s ~ " * 40
    + "'' }}",
    "{{ " + "(" * 200 + "1" + ")" * 200 + " }}",
    "{{ input.s | truncate(9999999999, end=input.s * 100000) }}",
    # undefined names are errors, not empty strings
    "{{ nonexistent }}",
    "{{ input.missing.deeper }}",
]


def test_at_least_fifty_probes() -> None:
    assert len(PROBES) >= 50


@pytest.mark.parametrize("probe", PROBES, ids=range(len(PROBES)))
def test_probe_blocked(probe: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(TemplateRejected):
        templates.check(probe, "p")
        out = templates.render_value(probe, CTX, "p")
        # a probe that renders must not have produced anything dangerous or huge
        assert out is None, f"rendered: {str(out)[:200]}"
    assert time.monotonic() - t0 < 1.0


@pytest.mark.parametrize(
    ("tpl", "want"),
    [
        ("{{ alert.entities.user }}", "bob"),
        ("user={{ input.user | upper }}", "user=BOB"),
        ("{{ input.n + 1 }}", 4),
        ("{{ input.l[:3] }}", [0, 1, 2]),
        ("{{ steps.a.output.k }}", "v"),
        ("{{ input.missing | default('none') }}", "none"),
        ("{% if input.n > 2 %}big{% else %}small{% endif %}", "big"),
        ("{{ 'a' ~ item }}", "ai"),
        (
            "{{ input.user | sha256 }}",
            "81b637d8fcd2c6da6359e6963113a1170de795e4b725b84d1e0b4cfd9ec58ce9",
        ),
        ("plain text", "plain text"),
    ],
)
def test_legitimate_templates_render(tpl: str, want: object) -> None:
    templates.check(tpl, "p")
    assert templates.render_value(tpl, CTX, "p") == want


def test_values_are_not_spliced() -> None:
    # a hostile value stays one string: it is never parsed as JSON or a template
    ctx = {**CTX, "input": {"user": '", "admin": true, "x": "{{ 7*7 }}'}}
    out = templates.render_value({"name": "{{ input.user }}"}, ctx, "p")
    assert out == {"name": '", "admin": true, "x": "{{ 7*7 }}'}


def test_probes_through_real_executions(make_runtime: Any, state_url: str) -> None:
    """The sandbox inside real executions, on SQLite and PostgreSQL: every probe is refused
    at import (naming file, step and cause) or fails its step at run time with a clear
    error, nothing rendered; a hostile input value is stored as one plain string."""
    from mantissa.soar.executor import Executor
    from mantissa.soar.store import PlaybookInvalid, PlaybookStore
    from tests.soar.conftest import playbook

    rt = make_runtime(state_url=state_url)
    store = PlaybookStore(rt)
    ex = Executor(rt)
    refused = failed = 0
    for i, probe in enumerate(PROBES):
        step = {
            "id": "a",
            "name": "a",
            "action_type": "update_asset",
            "parameters": {"asset_id": "host-1", "tags": [probe]},
        }
        try:
            pid = store.import_text(playbook([step], id=f"probe-{i}")).id
        except PlaybookInvalid as exc:
            assert "steps[0] (a)" in exc.message, exc.message
            refused += 1
            continue
        eid = ex.start(pid, input=CTX["input"])
        assert ex.run(eid) == "failed", probe
        doc = ex.get(eid)
        assert doc["steps"][0]["status"] == "failed" and "step a" in doc["error"], doc["error"]
        failed += 1
    assert refused + failed == len(PROBES) and refused > len(PROBES) // 2
    hostile = '", "admin": true, "x": "{{ 7*7 }}{% raw %}'
    pid = store.import_text(
        playbook(
            [
                {
                    "id": "a",
                    "name": "a",
                    "action_type": "update_asset",
                    "parameters": {"asset_id": "host-2", "tags": ["{{ input.user }}"]},
                }
            ],
            id="hostile-value",
        )
    ).id
    eid = ex.start(pid, input={"user": hostile})
    assert ex.run(eid) == "succeeded"
    assert ex.get(eid)["steps"][0]["input"]["tags"] == [hostile]
