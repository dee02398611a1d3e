"""Each LLM provider's official SDK against a local stub that checks the vendor's request
shape over real HTTP: structured output, free text, errors, rate limits, timeouts."""

from __future__ import annotations

from typing import Any

import pytest

for _sdk in ("anthropic", "openai", "google.genai", "boto3"):
    pytest.importorskip(
        _sdk, reason="the LLM SDKs come with the dev extra: pip install -e '.[dev]'"
    )

from mantissa.ask.plan import LLMPlan  # noqa: E402
from mantissa.errors import LLMError, LLMRateLimited, LLMTimeout  # noqa: E402
from mantissa.llm.base import LLMConfig, get_provider  # noqa: E402
from tests.ask.llm_stub import PLAN, Stub  # noqa: E402

ENV = {
    "ANTHROPIC_API_KEY": "sk-ant-test",
    "OPENAI_API_KEY": "sk-openai-test",
    "AZURE_OPENAI_API_KEY": "azure-test-key",
    "GEMINI_API_KEY": "gemini-test-key",
    "GOOGLE_OAUTH_ACCESS_TOKEN": "ya29.test-token",
    "AWS_ACCESS_KEY_ID": "AKIDTEST",
    "AWS_SECRET_ACCESS_KEY": "secret-test",
    "AWS_SESSION_TOKEN": "",
}
PROVIDERS = ["anthropic", "openai", "azure_openai", "bedrock", "vertex", "google_ai"]


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch):
    for k, v in ENV.items():
        if v:
            monkeypatch.setenv(k, v)
        else:
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    s = Stub()
    yield s
    s.close()


def config(name: str, stub: Stub, **kw: Any) -> LLMConfig:
    base: dict[str, Any] = {
        "provider": name,
        "base_url": stub.url + ("/v1" if name == "openai" else ""),
        "timeout_secs": 5,
        "max_retries": 0,
    }
    if name == "azure_openai":
        base["deployment"] = "mantissa-gpt"
    if name == "vertex":
        base.update(project="proj-1", location="europe-west4")
    if name == "bedrock":
        base["region"] = "us-east-1"
    base.update(kw)
    return LLMConfig.model_validate(base)


@pytest.mark.parametrize("name", PROVIDERS)
def test_structured_plan(stub: Stub, name: str) -> None:
    p = get_provider(config(name, stub))
    out = p.generate_with_schema("q", LLMPlan.model_json_schema(), name="query_plan", system="sys")
    assert out == PLAN
    LLMPlan.model_validate(out)
    req = stub.requests[-1]
    body = req["body"]
    # the schema travels the vendor's way
    if name == "anthropic":
        assert body["tool_choice"] == {"type": "tool", "name": "query_plan"}
        assert body["system"] == "sys" and "$defs" not in str(body["tools"])
    elif name in ("openai", "azure_openai"):
        assert body["response_format"]["type"] == "json_schema"
        assert body["messages"][0] == {"role": "system", "content": "sys"}
    elif name == "bedrock":
        assert body["toolConfig"]["toolChoice"] == {"tool": {"name": "query_plan"}}
        assert body["system"] == [{"text": "sys"}]
        assert req["path"].startswith("/model/anthropic.claude")
    else:
        assert body["generationConfig"]["responseMimeType"] == "application/json"
        assert "responseJsonSchema" in body["generationConfig"]
        assert body["systemInstruction"]["parts"][0]["text"] == "sys"


@pytest.mark.parametrize("name", PROVIDERS)
def test_free_text(stub: Stub, name: str) -> None:
    assert get_provider(config(name, stub)).generate("hi") == "hello"


@pytest.mark.parametrize("name", PROVIDERS)
def test_rate_limit_is_typed(stub: Stub, name: str) -> None:
    stub.mode = "429"
    with pytest.raises(LLMRateLimited):
        get_provider(config(name, stub)).generate_with_schema("q", {"type": "object"})


@pytest.mark.parametrize("name", PROVIDERS)
def test_server_error_is_clear_and_secret_free(stub: Stub, name: str) -> None:
    stub.mode = "500"
    with pytest.raises(LLMError) as info:
        get_provider(config(name, stub)).generate_with_schema("q", {"type": "object"})
    text = str(info.value)
    assert name.split("_")[0] in text or "google" in text or "vertex" in text
    for secret in ENV.values():
        if secret:
            assert secret not in text


@pytest.mark.parametrize("name", PROVIDERS)
def test_auth_failure(stub: Stub, name: str) -> None:
    stub.mode = "401"
    with pytest.raises(LLMError) as info:
        get_provider(config(name, stub)).generate("q")
    assert not isinstance(info.value, LLMRateLimited)


@pytest.mark.slow
@pytest.mark.parametrize("name", PROVIDERS)
def test_timeout(stub: Stub, name: str) -> None:
    stub.mode = "slow"
    with pytest.raises((LLMTimeout, LLMError)) as info:
        get_provider(config(name, stub, timeout_secs=0.5)).generate("q")
    assert "time" in str(info.value).lower() or isinstance(info.value, LLMTimeout)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["anthropic", "openai", "bedrock"])
def test_retry_after_rate_limit(stub: Stub, name: str) -> None:
    stub.fail_times = 1
    out = get_provider(config(name, stub, max_retries=2)).generate_with_schema(
        "q", {"type": "object"}
    )
    assert out == PLAN
    assert len(stub.requests) == 2


def test_missing_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from mantissa.errors import ConfigError

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    p = get_provider(LLMConfig(provider="anthropic"))
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        p.generate("q")


def test_unknown_provider() -> None:
    from mantissa.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown llm provider"):
        get_provider(LLMConfig(provider="nope"))


def test_llm_tier_answers_through_a_real_provider(stub: Stub, ask_lake, monkeypatch) -> None:
    """End to end: a question the rules tier declines is planned by the provider over HTTP,
    then rendered, guarded and run like any plan; the prompt is cached."""
    from mantissa.ask import answer
    from mantissa.config import Config
    from mantissa.runtime import Runtime
    from tests.nlq.dataset import NOW

    _, _, data = ask_lake
    cfg = Config.model_validate({"llm": config("openai", stub).model_dump(exclude_none=True)})
    rt = Runtime(data, config=cfg)
    ans = answer(rt, "zzqx how often did folks hit the aws console", now=NOW)
    assert ans.answered and ans.tier == "llm:openai/gpt-4o-mini"
    assert ans.intent == "count" and ans.rows and ans.rows[0][0] > 0
    sent = stub.requests[-1]["body"]["messages"][-1]["content"]
    assert "cloudtrail" in sent and "zzqx" in sent
    n = len(stub.requests)
    answer(rt, "zzqx how often did folks hit the aws console", now=NOW)
    assert len(stub.requests) == n  # prompt cache hit
