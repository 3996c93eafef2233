"""SMTP with STARTTLS, implicit TLS, AUTH, and a server that defers or refuses, all for real."""

from __future__ import annotations

import email
import email.policy
import ipaddress
import socket
import ssl
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from assistant.emails import OutgoingEmail, Sender, for_sending, to_message
from assistant.errors import AuthFailed, ProviderUnavailable
from assistant.retry import RetryPolicy
from integrations.smtp_mail import MailRejected, SmtpTransport

SENDER = Sender("meeting-assistant@example.com", "Example Ltd")
NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)
USER, PASSWORD = "meeting-assistant@example.com", "app-password"


def hello(to="alice@example.com"):
    return for_sending(to_message(OutgoingEmail(to, "Hello", "Hi", "<p>Hi</p>"), SENDER, NOW))


class Server:
    """aiosmtpd that checks logins, defers one address (451) and refuses data to another."""

    def __init__(self) -> None:
        self.received: list[email.message.EmailMessage] = []
        self.sessions: set = set()  # aiosmtpd starts one per connection

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("busy@"):
            return "451 4.3.2 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(r.startswith("spamtrap@") for r in envelope.rcpt_tos):
            return "554 5.7.1 Message refused"
        self.received.append(email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default))
        self.sessions.add(session)
        return "250 Accepted"


def _authenticate(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login.decode() == USER and auth_data.password.decode() == PASSWORD
    # handled=False: let aiosmtpd answer 535 itself (its default, True, answers nothing).
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, and a client context that trusts only it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(datetime.now(UTC) - timedelta(days=1))
            .not_valid_after(datetime.now(UTC) + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    client_context = ssl.create_default_context(cafile=str(folder / "cert.pem"))
    return server_context, client_context


def start(handler, **options) -> Controller:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port,
                            authenticator=_authenticate, **options)
    controller.start()
    return controller


@pytest.fixture()
def starttls(certificate):
    server_context, client_context = certificate
    handler = Server()
    controller = start(handler, tls_context=server_context, require_starttls=True)
    yield handler, controller.port, client_context
    controller.stop()


def transport(port, client_context, security="starttls", password=PASSWORD, **options):
    return SmtpTransport("127.0.0.1", port, security=security, username=USER, password=password,
                         tls_context=client_context,
                         retry=RetryPolicy(attempts=2, sleep=lambda s: None), **options)


def test_starttls_with_a_login_delivers(starttls):
    handler, port, client_context = starttls
    mailer = transport(port, client_context)
    mailer.send(hello())
    mailer.close()
    assert handler.received[0]["Subject"] == "Hello"


def test_a_kept_starttls_connection_carries_the_next_messages(starttls):
    handler, port, client_context = starttls
    mailer = transport(port, client_context)
    for _ in range(3):
        mailer.send(hello())
    mailer.close()
    assert len(handler.received) == 3
    assert len(handler.sessions) == 1


def test_a_wrong_password_is_an_auth_failure_that_says_whose(starttls):
    handler, port, client_context = starttls
    with pytest.raises(AuthFailed, match=f"refused the login for {USER}"):
        transport(port, client_context, password="wrong").send(hello())
    assert handler.received == []


def test_an_untrusted_certificate_is_not_talked_to(starttls):
    handler, port, _ = starttls
    with pytest.raises(ProviderUnavailable, match="failed"):
        transport(port, ssl.create_default_context()).send(hello())
    assert handler.received == []


def test_a_deferred_recipient_is_retried_then_reported(starttls):
    handler, port, client_context = starttls
    with pytest.raises(ProviderUnavailable, match="deferred"):
        transport(port, client_context).send(hello("busy@example.com"))


def test_a_message_refused_at_data_is_final(starttls):
    handler, port, client_context = starttls
    with pytest.raises(MailRejected, match="554"):
        transport(port, client_context).send(hello("spamtrap@example.com"))


def test_implicit_tls(certificate):
    server_context, client_context = certificate
    handler = Server()
    controller = start(handler, ssl_context=server_context, auth_require_tls=False)
    mailer = transport(controller.port, client_context, security="tls")
    try:
        mailer.send(hello())
        mailer.send(hello())
    finally:
        mailer.close()
        controller.stop()
    assert len(handler.received) == 2
    assert len(handler.sessions) == 1
