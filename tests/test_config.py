"""Config validation: the exact messages a user sees for common mistakes, and --set overrides."""

from __future__ import annotations

import pytest

from autodata.config import apply_overrides, load_config, parse_override, validate_config
from autodata.errors import ConfigError

SIM = {"provider": "simulated", "model": "sim-weak"}
OAI = {"provider": "openai", "model": "m", "base_url": "http://127.0.0.1:8000/v1"}


def _ep(**kw):
    return {"models": {"w": {**OAI, **kw}}}


BAD = [
    (
        {"models": {"w": SIM}, "sed": 1},
        "sed: unknown key 'sed'; allowed keys here: seed, models, roles, cache, generate",
    ),
    (
        {"models": {"w": {**SIM, "max_concurency": 3}}},
        "models.w.max_concurency: unknown key 'max_concurency'; allowed keys here: provider, model, base_url,",
    ),
    (
        {"models": {"w": {"provider": "vllm", "model": "x"}}},
        "models.w.provider: 'vllm' is not allowed; expected 'openai' or 'simulated'",
    ),
    (
        _ep(max_concurrency="lots"),
        "models.w.max_concurrency: must be a valid integer, unable to parse string as an integer (got 'lots')",
    ),
    (_ep(rpm=0), "models.w.rpm: must be greater than or equal to 1 (got 0)"),
    (_ep(base_url="gpu1:8000"), "models.w.base_url: 'gpu1:8000' is not an http(s) URL"),
    (_ep(base_url=[]), "models.w.base_url: give at least one URL, or leave base_url out"),
    (_ep(api_key_env="sk-abc-123"), "models.w.api_key_env: must be the NAME of an environment variable"),
    ({"models": {"w": {**SIM, "base_url": "http://x"}}}, "models.w.base_url: not used by provider 'simulated'"),
    (_ep(simulation={"latency_ms": 1}), "models.w.simulation: only allowed with provider 'simulated'"),
    (_ep(min_concurrency=8, max_concurrency=4), "models.w.min_concurrency: must not exceed max_concurrency (4)"),
    ({"models": {"w": SIM}, "roles": {"judge": "nope"}}, "roles.judge: unknown model 'nope'; defined models: w"),
    (
        {"models": {"w": SIM}, "roles": {"referee": "w"}},
        "roles.referee: unknown name 'referee'; expected 'challenger', 'quality_verifier'",
    ),
    ({}, "models: required key is missing"),
    (
        {"models": {"w": {**SIM, "price": {"input": 1}}}},
        "models.w.price.input: unknown key 'input'; allowed keys here: input_per_mtok, output_per_mtok",
    ),
    ({"models": {"w": {"provider": "openai"}}}, "models.w.model: required key is missing"),
    ({"models": {"w": SIM}, "generate": {"model": "x"}}, "generate.model: unknown model 'x'; defined models: w"),
    ({"models": [1, 2]}, "models: must be a mapping of keys to values (got [1, 2])"),
    (
        {"models": {"w": {**SIM, "sampling": {"temperature": 5}}}},
        "models.w.sampling.temperature: must be less than or equal to 2 (got 5)",
    ),
    (
        _ep(structured_output="xml"),
        "models.w.structured_output: 'xml' is not allowed; expected 'json_schema', 'json_object' or 'text'",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_bad_config_message(data, message):
    with pytest.raises(ConfigError) as info:
        validate_config(data, "cfg.yaml")
    rendered = info.value.render()
    assert message in rendered
    assert rendered.startswith("cfg.yaml: 1 problem in the configuration")


def test_all_problems_reported_at_once():
    data = {"models": {"w": {**OAI, "rpm": 0, "tpm": -1, "timeout_s": "soon"}}, "seeed": 1}
    with pytest.raises(ConfigError) as info:
        validate_config(data)
    assert "4 problems" in info.value.message
    keys = sorted(d.split(":")[0] for d in info.value.details)
    assert keys == ["models.w.rpm", "models.w.timeout_s", "models.w.tpm", "seeed"]


def test_key_value_never_echoed():
    with pytest.raises(ConfigError) as info:
        validate_config(_ep(api_key_env="sk-live-SECRET"))
    assert "SECRET" not in info.value.render()


def test_base_url_one_or_many_normalised():
    cfg = validate_config(_ep(base_url="http://a:1/v1/"))
    assert cfg.models["w"].base_url == ["http://a:1/v1"]
    cfg = validate_config(_ep(base_url=["http://a:1/v1", "http://b:1/v1"]))
    assert cfg.models["w"].base_url == ["http://a:1/v1", "http://b:1/v1"]


def test_simulated_gets_default_simulation_block():
    cfg = validate_config({"models": {"w": SIM}})
    assert cfg.models["w"].simulation is not None
    assert cfg.models["w"].simulation.fault_rate == pytest.approx(0.04)


def test_overrides_parse_yaml_scalars_and_lists():
    assert parse_override("seed=3") == (["seed"], 3)
    assert parse_override("models.w.base_url=[http://a/v1, http://b/v1]") == (
        ["models", "w", "base_url"],
        ["http://a/v1", "http://b/v1"],
    )
    assert parse_override("models.w.model=org/name:tag") == (["models", "w", "model"], "org/name:tag")
    with pytest.raises(ConfigError, match=r"expected KEY\.PATH=VALUE"):
        parse_override("seed")
    with pytest.raises(ConfigError, match="dotted path"):
        parse_override("models..x=1")


def test_override_creates_sections_and_is_validated(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("models:\n  w: {provider: openai, model: m, base_url: 'http://127.0.0.1:1/v1'}\n")
    cfg = load_config(path, ["models.w.rpm=600", "models.w.price.input_per_mtok=2.5", "seed=7"])
    assert cfg.models["w"].rpm == 600
    assert cfg.models["w"].price.input_per_mtok == 2.5
    assert cfg.seed == 7
    with pytest.raises(ConfigError) as info:
        load_config(path, ["models.w.rpm=many"])
    assert "models.w.rpm: must be a valid integer" in info.value.render()
    with pytest.raises(ConfigError, match=r"models\.w\.model is a value, not a section"):
        apply_overrides({"models": {"w": {"model": "m"}}}, ["models.w.model.x=1"])


def test_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("models:\n  w: {provider: openai\n  x: 1\n")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line \d+, column \d+\)"):
        load_config(path)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    path = tmp_path / "c.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(path)


def test_fingerprint_changes_with_config():
    a = validate_config({"models": {"w": SIM}})
    b = validate_config({"models": {"w": SIM}, "seed": 1})
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == validate_config({"models": {"w": SIM}}).fingerprint()


def test_api_key_read_from_environment(monkeypatch):
    cfg = validate_config(_ep(api_key_env="MY_TEST_KEY"))
    monkeypatch.delenv("MY_TEST_KEY", raising=False)
    assert cfg.models["w"].api_key() is None
    monkeypatch.setenv("MY_TEST_KEY", "k-123")
    assert cfg.models["w"].api_key() == "k-123"
    assert "k-123" not in cfg.model_dump_json()


@pytest.mark.parametrize("value", ["gsk_abcdEFGH1234", "hf_abcdefghijklmnop", "sk_live_123", "A" * 65])
def test_api_key_env_that_looks_like_a_key_is_refused_and_not_echoed(value):
    with pytest.raises(ConfigError) as info:
        validate_config(_ep(api_key_env=value))
    assert "never the key itself" in info.value.render() and value not in info.value.render()


def test_credentials_in_urls_are_masked_wherever_shown():
    from autodata.config import redact_url

    assert redact_url("https://user:s3cret@host.example:8443/v1") == "https://***@host.example:8443/v1"
    assert redact_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    cfg = validate_config(_ep(base_url=["https://u:s3cret@a/v1", "http://b/v1"]))
    assert cfg.redacted_dump()["models"]["w"]["base_url"] == ["https://***@a/v1", "http://b/v1"]
    from autodata.llm.runtime import make_backends

    labels = [b.label for b in make_backends("w", cfg.models["w"], 0)]
    assert labels == ["https://***@a/v1", "http://b/v1"]
