"""The OpenAI-compatible client against a scripted server on loopback (real HTTP)."""

from __future__ import annotations

import pytest

from cove.errors import ModelError
from cove.inference.chat.remote import RemoteModel
from cove.inference.http_endpoint import is_loopback
from tests.scripted.openai_server import completion, scripted_openai_server


def test_offline_mode_refuses_anything_but_loopback() -> None:
    assert is_loopback("http://127.0.0.1:8080/v1") and is_loopback("http://localhost/v1")
    assert is_loopback("http://[::1]:1/v1") and not is_loopback("https://api.example.com/v1")
    with pytest.raises(ModelError, match=r"offline mode refuses api\.example\.com"):
        RemoteModel("https://api.example.com/v1", "big", offline=True)


def test_chat_with_tool_calls_and_the_key_only_in_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COVE_TEST_KEY", "sk-test-secret-value-123456")
    script = [completion("", [("read_file", '{"path": "a.py"}'), ("edit_file", '{"path": ')])]
    with scripted_openai_server(script) as server:
        model = RemoteModel(server.url, "scripted", api_key_env="COVE_TEST_KEY")
        reply = model.chat([{"role": "user", "content": "fix a.py"}], tools=[{"type": "function"}])
        headers, body = server.requests[0]
        assert headers["Authorization"] == "Bearer sk-test-secret-value-123456"
        assert body["model"] == "scripted" and body["tools"] == [{"type": "function"}]
        assert "sk-test" not in repr(model)
    good, bad = reply.tool_calls
    assert good.name == "read_file" and good.arguments == {"path": "a.py"} and good.error is None
    assert bad.name == "edit_file" and bad.error is not None and "malformed tool-call JSON" in bad.error
    assert (reply.prompt_tokens, reply.completion_tokens) == (12, 5)


def test_server_errors_and_garbage_become_model_errors() -> None:
    with scripted_openai_server([(503, "overloaded"), (200, "not json")]) as server:
        model = RemoteModel(server.url, "scripted")
        with pytest.raises(ModelError, match="answered 503: overloaded"):
            model.chat([{"role": "user", "content": "hi"}])
        with pytest.raises(ModelError, match="not a chat completion"):
            model.chat([{"role": "user", "content": "hi"}])
    with pytest.raises(ModelError, match="cannot reach"):
        RemoteModel(server.url, "scripted", timeout_s=2).chat([{"role": "user", "content": "hi"}])


def test_a_missing_key_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COVE_NO_SUCH_KEY", raising=False)
    with pytest.raises(ModelError, match="COVE_NO_SUCH_KEY is not set"):
        RemoteModel("http://127.0.0.1:9/v1", "x", api_key_env="COVE_NO_SUCH_KEY")


def test_streamed_replies_arrive_in_pieces_and_assemble_like_whole_ones() -> None:
    reply = completion(
        "Reading the file first.", [("read_file", '{"path": "calc.py"}'), ("search", '{"pattern": "a"}')]
    )
    with scripted_openai_server([reply, reply, (500, "overloaded")]) as server:
        model = RemoteModel(server.url, "scripted")
        pieces: list[str] = []
        streamed = model.chat([{"role": "user", "content": "go"}], on_text=pieces.append)
        whole = model.chat([{"role": "user", "content": "go"}])
        with pytest.raises(ModelError, match="answered 500: overloaded"):
            model.chat([{"role": "user", "content": "go"}], on_text=pieces.append)
        bodies = [body for _, body in server.requests]
    assert pieces == ["Reading ", "the ", "file ", "first."]
    assert streamed == whole
    assert [c.name for c in streamed.tool_calls] == ["read_file", "search"]
    assert streamed.tool_calls[0].arguments == {"path": "calc.py"} and streamed.prompt_tokens == 12
    assert bodies[0]["stream"] is True and "stream" not in bodies[1]
