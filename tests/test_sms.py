"""The SMS gateway: the Brevo backend speaks real HTTP to a local stand-in for the provider."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from dmp.sms import BrevoSmsBackend, SmsError, send_sms


class Provider:
    """A local HTTP server answering like Brevo's transactional SMS endpoint."""

    def __init__(self, status: int = 201, reply: bytes = b'{"messageId": 1511882900176220}') -> None:
        self.requests: list[dict] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                provider.requests.append({"path": self.path, "body": json.loads(body),
                                          "headers": {k.lower(): v for k, v in self.headers.items()}})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v3/transactionalSMS/send"
        # shutdown() waits for the serving loop to look at its flag, every poll_interval
        # (half a second by default): a short one keeps each test from waiting on it.
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider(settings):
    running = Provider()
    settings.SMS_BACKEND = "dmp.sms.BrevoSmsBackend"
    settings.SMS_API_URL, settings.SMS_API_KEY, settings.SMS_SENDER = running.url, "xkeysib-test", "DMP"
    yield running
    running.close()


def test_the_brevo_backend_posts_the_message_to_the_provider(provider, caplog):
    caplog.set_level(logging.INFO, logger="dmp.sms")
    send_sms(to="+33612345678", text="DMP: your login code is 123456.")
    [request] = provider.requests
    assert request["path"] == "/v3/transactionalSMS/send"
    assert request["headers"]["api-key"] == "xkeysib-test"
    assert request["headers"]["content-type"] == "application/json"
    assert request["body"] == {"sender": "DMP", "recipient": "33612345678", "type": "transactional",
                               "content": "DMP: your login code is 123456."}
    # The log says it went, with the provider's id: never the number nor the text.
    assert "1511882900176220" in caplog.text
    assert "33612345678" not in caplog.text and "123456" not in caplog.text


@pytest.mark.parametrize("status", [400, 401, 500])
def test_a_refusal_by_the_provider_is_an_error_that_names_no_one(settings, caplog, status):
    refusing = Provider(status=status, reply=b'{"code": "invalid_parameter"}')
    settings.SMS_API_URL, settings.SMS_API_KEY = refusing.url, "xkeysib-test"
    try:
        with pytest.raises(SmsError, match=str(status)):
            BrevoSmsBackend().send(to="+33612345678", text="DMP: your login code is 123456.")
    finally:
        refusing.close()
    assert "33612345678" not in caplog.text and "123456" not in caplog.text


def test_an_unreachable_provider_is_an_error(settings):
    unreachable = Provider()
    settings.SMS_API_URL, settings.SMS_API_KEY = unreachable.url, "xkeysib-test"
    unreachable.close()
    with pytest.raises(SmsError, match="unreachable"):
        BrevoSmsBackend().send(to="+33612345678", text="hello")
