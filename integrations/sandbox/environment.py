"""A whole sandbox in one object: both calendar emulators, the mail sink, and a config for them.

The demo, the end-to-end tests and the benchmarks all need the same setting: a Google
Workspace domain with a service account delegated for it, a Microsoft 365 tenant with an app
registration consented by its admin, an SMTP server, and the assistant's config pointing at
all of them. Secrets go into `environ` (never into the config), as in production.
`locales` gives users the language they chose in their calendar ("de" in Google Calendar's
terms, "de-DE" in Outlook's); the others keep each emulator's default ("en", "en-US").
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from assistant.secret_files import write_owner_only
from integrations.sandbox.google_calendar import GoogleCalendarEmulator
from integrations.sandbox.mail import MailSink
from integrations.sandbox.microsoft_graph import GraphEmulator
from integrations.sandbox.microsoft_identity import AppRegistration
from integrations.sandbox.server import Faults

SERVICE_ACCOUNT = "assistant@meeting-format-sandbox.iam.gserviceaccount.com"
SENDER = "meeting-assistant@example.com"
TOKEN_SECRET_ENV = "ASSISTANT_TOKEN_SECRET"
GRAPH_SECRET_ENV = "ASSISTANT_MICROSOFT_CLIENT_SECRET"


class SandboxEnvironment:
    def __init__(self, folder: Path, *, google_users: list[str], microsoft_users: list[str],
                 domain: str = "example.com", faults: Faults | None = None,
                 dedupe_message_ids: bool = True,
                 locales: Mapping[str, str] | None = None) -> None:
        self.folder = folder
        self.domain = domain
        self.google_users, self.microsoft_users = google_users, microsoft_users
        self.locales = dict(locales or {})
        self.google = GoogleCalendarEmulator(faults)
        self.graph = GraphEmulator(faults, tenant=domain)
        self.mail = MailSink(dedupe_message_ids=dedupe_message_ids)
        self.environ: dict[str, str] = {TOKEN_SECRET_ENV: secrets.token_urlsafe(48)}

    def start(self) -> SandboxEnvironment:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.google.start()
        self.graph.start()
        self.mail.start()
        for user in self.google_users:
            self.google.add_user(user)
            if user in self.locales:
                self.google.set_locale(user, self.locales[user])
        for user in self.microsoft_users:
            self.graph.add_user(user)
            if user in self.locales:
                self.graph.set_locale(user, self.locales[user])
        key = self.folder / "google-service-account.json"
        write_owner_only(key, json.dumps(self.google.service_account_key(SERVICE_ACCOUNT,
                                                                        self.domain)))
        self.graph_app = self.graph.identity.register_app(
            self.domain, secret=secrets.token_urlsafe(24))
        self.environ[GRAPH_SECRET_ENV] = self.graph_app.secret
        return self

    def stop(self) -> None:
        self.mail.stop()
        self.graph.stop()
        self.google.stop()

    def google_oauth_client_file(self) -> Path:
        """An OAuth client registered in the Google emulator, as the client-secrets JSON an admin
        downloads from the Cloud console (an "installed" app), for `assistant auth google
        --client-secrets`. Its consent page asks who signs in."""
        client = self.google.installed_app_client(consenting_user="")
        path = self.folder / "google-oauth-client.json"
        write_owner_only(path, json.dumps(client, indent=1))
        return path

    def microsoft_certificate_app(self) -> tuple[AppRegistration, Path]:
        """A second app registration, consented, that signs in with a certificate; and the PEM
        (private key and certificate) an admin would make for it, for `--certificate`."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meeting-format-assistant")])
        now = datetime.now(UTC)
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                       .public_key(key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - timedelta(days=1))
                       .not_valid_after(now + timedelta(days=365))
                       .sign(key, hashes.SHA256()))
        certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        app = self.graph.identity.register_app(self.domain, certificate_pem=certificate_pem)
        path = self.folder / "microsoft-app.pem"
        write_owner_only(path, key_pem + certificate_pem)
        return app, path

    def config(self, database_url: str, **sections: dict[str, Any]) -> dict[str, Any]:
        """The assistant's config for this sandbox, as a dict; sections are merged in."""
        data: dict[str, Any] = {
            "organisation": {"name": "Example Ltd", "domains": [self.domain]},
            "google": {"calendars": self.google_users, "api_endpoint": self.google.url,
                       "service_account_key_file": str(self.folder /
                                                       "google-service-account.json")},
            "microsoft": {"calendars": self.microsoft_users, "tenant": self.domain,
                          "client_id": self.graph_app.client_id,
                          "client_secret_env": GRAPH_SECRET_ENV,
                          "authority": self.graph.url.rstrip("/"),
                          "graph_endpoint": self.graph.graph_url},
            "mail": {"sender": SENDER, "token_secret_env": TOKEN_SECRET_ENV,
                     "smtp": {"host": "127.0.0.1", "port": self.mail.port, "security": "none"}},
            "service": {"database_url": database_url},
        }
        for name, values in sections.items():
            data[name] = {**data.get(name, {}), **values}
        return data


def to_toml(data: dict[str, Any]) -> str:
    """A config dict as TOML: tables of strings, numbers, booleans and lists of those."""
    lines: list[str] = []

    def table(prefix: str, values: dict[str, Any]) -> None:
        plain = {k: v for k, v in values.items() if not isinstance(v, dict)}
        if prefix:
            lines.append(f"\n[{prefix}]")
        lines.extend(f"{json.dumps(key)} = {_value(value)}" for key, value in plain.items())
        for key, value in values.items():
            if isinstance(value, dict):
                table(f"{prefix}.{json.dumps(key)}" if prefix else json.dumps(key), value)

    table("", data)
    return "\n".join(lines).lstrip() + "\n"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    return json.dumps(value)  # strings and numbers: JSON's escapes are TOML's
