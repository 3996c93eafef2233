"""The assistant's config file: a TOML document validated by pydantic models.

Unknown keys are rejected so that a typo is an error rather than a silently ignored setting,
and every error names the file, the key path and what is allowed (see assistant.validation).
Secrets never live here: the file names the environment variables that hold them.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from assistant.errors import ConfigError
from assistant.language import DEFAULT, SUPPORTED
from assistant.redaction import keep_out_of_logs
from assistant.validation import describe_validation_error

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def _domain(value: str) -> str:
    value = value.strip().lower().removeprefix("@")
    if not _DOMAIN.match(value):
        raise ValueError(f"{value!r} is not a domain name; write it like 'example.com'")
    return value


def _email(value: str) -> str:
    value = value.strip()
    if not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an email address; write it like 'alice@example.com'")
    return value


def _language(value: str) -> str:
    code = value.strip().lower()
    if code not in SUPPORTED:
        raise ValueError(f"{value!r} is not a language the assistant writes; use one of "
                         f"{', '.join(SUPPORTED)}")
    return code


def _endpoint(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


Domain = Annotated[str, AfterValidator(_domain)]
Language = Annotated[str, AfterValidator(_language)]
Email = Annotated[str, AfterValidator(_email)]
Endpoint = Annotated[str, AfterValidator(_endpoint)]
EnvVarName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Organisation(_Section):
    name: str = "our team"
    domains: list[Domain] = Field(min_length=1)
    # The organisation's language: the organisers' emails where nothing more particular says
    # (see Config.organiser_language), and the invite notes of customers without their own.
    language: Language | None = None


# Addresses that appear as attendees but are calendars, rooms or bots, never customers.
DEFAULT_IGNORED_DOMAINS = (
    "resource.calendar.google.com",
    "group.calendar.google.com",
    "group.v.calendar.google.com",
    "import.calendar.google.com",
)


class Detection(_Section):
    customer_domains: list[Domain] = []  # when not empty, only these domains count as customers
    ignore_domains: list[Domain] = list(DEFAULT_IGNORED_DOMAINS)
    include_title_keywords: list[str] = []  # when not empty, the title must contain one
    exclude_title_keywords: list[str] = []


class Policy(_Section):
    virtual_minutes: Literal[45, 50] = 50
    travel: Literal["allowed", "not_allowed"] = "allowed"
    travel_note: str = "the organisation's travel policy rules out travel"
    reminder_after_hours: int = Field(default=24, ge=1)
    decide_before_hours: int = Field(default=24, ge=1)
    # The most rows one question email asks; a decision that more answers than this would be
    # needed to overturn is made without asking.
    max_questions: int = Field(default=4, ge=1, le=12)
    # How long an organiser's answer about a customer (its values, location, competitors,
    # power) is reused for that customer's next meetings; 0 forgets at once.
    remember_answers_days: int = Field(default=90, ge=0, le=3650)
    # Everything but the effects: no invite is written and no email sent, each is logged and
    # kept in the audit log as what would have been done. For trying the assistant out.
    dry_run: bool = False


class Customer(_Section):
    """What an admin knows about one customer; each fact answers a checklist row."""

    name: str = ""
    values: Literal["in_person", "virtual"] | None = None  # row 5
    competitors_active: bool | None = None  # row 8
    power: Literal["balanced", "customer"] | None = None  # row 10
    travel: Literal["allowed", "not_allowed"] = "allowed"  # the customer's own travel policy
    language: Language | None = None  # the language of the note in this customer's invites


class Organiser(_Section):
    """What an admin sets for one organiser."""

    language: Language | None = None  # of the emails the organiser gets


class Sync(_Section):
    """The window of meetings the assistant looks at, around today."""

    past_days: int = Field(default=30, ge=0, le=365)
    future_days: int = Field(default=180, ge=1, le=730)


class Google(_Section):
    calendars: list[Email] = []
    api_endpoint: Endpoint | None = None  # local emulator; unset means Google's own endpoint
    send_updates: Literal["all", "externalOnly", "none"] = "all"
    # Sign-in, one of the two; files outside the repository, relative to the config file.
    service_account_key_file: Path | None = None  # a key with domain-wide delegation
    token_file: Path | None = None  # one user's stored sign-in (`assistant auth google`)
    batch_size: int = Field(default=50, ge=1, le=1000)  # calls per batch request
    # Batches in flight at once. Each part is its own user's call, so this raises no one's
    # per-user rate; at 4, 5,000 calendars took 25 rounds of 50 ms and more (README,
    # "Performance"); beyond 8 the worker's CPU, not the network, is what it waits for.
    max_connections: int = Field(default=8, ge=1, le=32)
    request_timeout_seconds: float = Field(default=30.0, gt=0, le=300)  # then asked again

    @property
    def signed_in(self) -> bool:
        """The config says how to sign in to Google (whether that works is another matter)."""
        return bool(self.service_account_key_file or self.token_file)

    @model_validator(mode="after")
    def _one_sign_in(self, info: ValidationInfo) -> Google:
        if self.service_account_key_file and self.token_file:
            raise ValueError("set service_account_key_file or token_file, not both")
        if _signing_in(info):
            return self
        if self.calendars and not self.signed_in:
            raise ValueError(
                "calendars are set but Google has no sign-in: set service_account_key_file "
                "(a service-account key with domain-wide delegation) or token_file (one "
                "user's sign-in, written by `assistant auth google`)"
            )
        return self


def _signing_in(info: ValidationInfo) -> bool:
    """`assistant auth` reads a config whose sign-in it is about to set up."""
    return bool(info.context and info.context.get("signing_in"))


class Categories(_Section):
    """Outlook categories the assistant puts on an annotated meeting, per format."""

    in_person: str = Field(default="In person", min_length=1, max_length=255)
    virtual: str = Field(default="Virtual", min_length=1, max_length=255)


class Microsoft(_Section):
    calendars: list[Email] = []
    tenant: str = ""
    authority: Endpoint = "https://login.microsoftonline.com"  # sovereign clouds differ
    graph_endpoint: Endpoint = "https://graph.microsoft.com/v1.0"
    client_id: str = ""  # the app registration's application (client) id
    # Sign-in, one of three: app-only with a secret (named by its environment variable) or a
    # certificate (a PEM file with the private key and the certificate), for many mailboxes;
    # or one user's device-code sign-in, whose msal token cache lives in this file.
    client_secret_env: EnvVarName | None = None
    certificate_file: Path | None = None
    token_cache_file: Path | None = None
    batch_size: int = Field(default=20, ge=1, le=20)  # Graph's $batch takes at most 20
    # $batch requests in flight at once. Outlook's limit of four concurrent requests is per
    # mailbox, and a batch asks each of its mailboxes once: 16 batches are 320 mailboxes, one
    # request each. At 4, 5,000 mailboxes took 63 rounds (README, "Performance").
    max_connections: int = Field(default=16, ge=1, le=32)
    request_timeout_seconds: float = Field(default=30.0, gt=0, le=300)  # then asked again
    categories: Categories | None = None  # unset: the assistant adds no categories

    @property
    def signed_in(self) -> bool:
        """The config says how to sign in to Microsoft (whether that works is another matter)."""
        return bool(self.tenant and self.client_id and self._sign_ins())

    def _sign_ins(self) -> list[str]:
        return [name for name in ("client_secret_env", "certificate_file", "token_cache_file")
                if getattr(self, name) is not None]

    @model_validator(mode="after")
    def _one_sign_in(self, info: ValidationInfo) -> Microsoft:
        chosen = self._sign_ins()
        if len(chosen) > 1:
            raise ValueError(f"set one sign-in, not {' and '.join(chosen)}")
        if _signing_in(info):
            return self
        if self.calendars and not self.signed_in:
            raise ValueError(
                "calendars are set but Microsoft has no sign-in: set tenant, client_id and one "
                "of client_secret_env (app-only, a secret), certificate_file (app-only, a "
                "certificate) or token_cache_file (one user, `assistant auth microsoft`)"
            )
        return self


class Smtp(_Section):
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password_env: EnvVarName = "ASSISTANT_SMTP_PASSWORD"


class Imap(_Section):
    host: str = Field(min_length=1)
    port: int = Field(default=993, ge=1, le=65535)
    security: Literal["tls", "starttls", "none"] = "tls"
    username: str = ""
    password_env: EnvVarName = "ASSISTANT_IMAP_PASSWORD"
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    failed_folder: str = "Failed"  # mail that could not be handled, kept for a person to see


class Mail(_Section):
    sender: Email
    smtp: Smtp | None = None
    imap: Imap | None = None
    # The environment variable holding the secret that signs reply tokens (32+ bytes).
    token_secret_env: EnvVarName = "ASSISTANT_TOKEN_SECRET"
    # Accept replies only if our server saw dmarc=pass. Unset: required exactly when
    # dmarc_authserv_id says which server writes the verdict.
    require_dmarc: bool | None = None
    # The receiving server's name in its Authentication-Results (e.g. mx.google.com): when
    # set, no other header can vouch for a sender. Exchange Online writes none: leave it unset.
    dmarc_authserv_id: str | None = None
    delegates: dict[Email, list[Email]] = {}  # organiser -> who may answer for them
    daily_question_cap: int = Field(default=5, ge=1, le=100)  # beyond this: one digest a day
    public_url: Endpoint | None = None  # where the web app is reached: enables one-click answers

    @property
    def dmarc_required(self) -> bool:
        """Whether a reply must have passed DMARC: as set, or else wherever our server's
        verdict can be told apart from a sender's (dmarc_authserv_id is set)."""
        if self.require_dmarc is not None:
            return self.require_dmarc
        return self.dmarc_authserv_id is not None


class Service(_Section):
    """The long-running service: where its state lives, how often each job runs, its web app."""

    # SQLite file (relative to the config file) for one worker, or PostgreSQL for several:
    # postgresql+psycopg://user@host/dbname (the password in the environment, PGPASSWORD).
    database_url: str = "sqlite:///assistant.sqlite3"
    sync_interval_seconds: int = Field(default=60, ge=1, le=3600)
    outbox_interval_seconds: int = Field(default=5, ge=1, le=600)
    # Outbox rows (emails, invite writes) delivered at once, each thread with its own SMTP
    # connection: keep it within what the mail server allows one client.
    delivery_threads: int = Field(default=4, ge=1, le=32)
    inbox_interval_seconds: int = Field(default=30, ge=1, le=3600)
    follow_up_interval_seconds: int = Field(default=300, ge=1, le=86_400)
    lease_seconds: int = Field(default=120, ge=2, le=3600)  # a dead worker's work waits this long
    listen: str = "127.0.0.1:8080"  # the web app: webhooks, one-click answers, /healthz, /metrics
    public_url: Endpoint | None = None  # where Google and Graph reach the webhooks; unset: poll
    # The admin page (/admin) opens only with this password; unset, the page stays closed.
    admin_password_env: EnvVarName = "ASSISTANT_ADMIN_PASSWORD"
    # When set, /metrics answers only requests with `Authorization: Bearer <its value>`.
    metrics_token_env: EnvVarName | None = None

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not re.match(r"^(sqlite|postgresql(\+psycopg)?)://", value):
            raise ValueError(f"{value!r} is neither sqlite:///FILE nor postgresql+psycopg://...")
        return value

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{value!r} is not HOST:PORT, e.g. 127.0.0.1:8080")
        return value


class Config(_Section):
    organisation: Organisation
    detection: Detection = Detection()
    policy: Policy = Policy()
    customers: dict[Domain, Customer] = {}
    organisers: dict[Email, Organiser] = {}
    sync: Sync = Sync()
    google: Google = Google()
    microsoft: Microsoft = Microsoft()
    mail: Mail | None = None
    service: Service = Service()
    checklist: Path | None = None  # a checklist file of your own; relative to this file

    @field_validator("customers", mode="before")
    @classmethod
    def _lowercase_customer_domains(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(key).lower(): facts for key, facts in value.items()}
        return value

    @field_validator("organisers", mode="before")
    @classmethod
    def _lowercase_organisers(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(key).strip().lower(): facts for key, facts in value.items()}
        return value

    def language_left_to_provider(self, organiser: str) -> bool:
        """Whether config names no language for organiser, so their provider's setting counts."""
        own = self.organisers.get(organiser.lower())
        return not ((own and own.language) or self.organisation.language)

    def organiser_language(self, organiser: str, provider_setting: str | None = None) -> str:
        """The language of organiser's emails: theirs in config, else the organisation's,
        else what their calendar provider says they use (a negotiated code), else English."""
        own = self.organisers.get(organiser.lower())
        return (own.language if own else None) or self.organisation.language or \
            provider_setting or DEFAULT

    def customer_language(self, domains: list[str] | tuple[str, ...]) -> str:
        """The language of the invite note for a meeting with customers at domains: the
        first one's in config, else the organisation's, else English."""
        for domain in domains:
            customer = self.customer(domain)
            if customer and customer.language:
                return customer.language
        return self.organisation.language or DEFAULT

    def customer(self, domain: str) -> Customer | None:
        """What the admin set for the customer at domain, or at a parent domain of it."""
        domain = domain.lower()
        while domain:
            if domain in self.customers:
                return self.customers[domain]
            domain = domain.partition(".")[2]
        return None

    @model_validator(mode="after")
    def _calendars_belong_to_the_organisation(self) -> Config:
        for provider in ("google", "microsoft"):
            for address in getattr(self, provider).calendars:
                if not in_domains(address.rpartition("@")[2], self.organisation.domains):
                    raise ValueError(
                        f"{provider}.calendars: {address} is outside organisation.domains "
                        f"({', '.join(self.organisation.domains)}); only your own people's "
                        "calendars can be watched"
                    )
        return self


def secrets_named(config: Config) -> dict[str, str]:
    """The environment variables the config names for secrets, each with its config key."""
    named: dict[str, str] = {}
    if config.mail is not None:
        named[config.mail.token_secret_env] = "mail.token_secret_env"
        if config.mail.smtp is not None and config.mail.smtp.username:
            named[config.mail.smtp.password_env] = "mail.smtp.password_env"
        if config.mail.imap is not None:
            named[config.mail.imap.password_env] = "mail.imap.password_env"
    if config.microsoft.client_secret_env:
        named[config.microsoft.client_secret_env] = "microsoft.client_secret_env"
    if config.service.metrics_token_env:
        named[config.service.metrics_token_env] = "service.metrics_token_env"
    return named


def files_named(config: Config) -> dict[str, Path]:
    """The sign-in files the config names, by config key."""
    files = {"google.service_account_key_file": config.google.service_account_key_file,
             "google.token_file": config.google.token_file,
             "microsoft.certificate_file": config.microsoft.certificate_file}
    return {key: path for key, path in files.items() if path is not None}


def secret_from_env(variable: str, key: str, *, needed: bool = True) -> str:
    """The secret held in environment variable `variable` (named by config key `key`).

    Raises ConfigError naming the key and the variable when it is needed but unset; never
    includes the value in any message.
    """
    value = os.environ.get(variable, "")
    if needed and not value:
        raise ConfigError(key, [f"the environment variable {variable} is not set; it should "
                                "hold the secret, which never goes in the config file"])
    keep_out_of_logs(value)
    return value


def in_domains(domain: str, domains: list[str] | tuple[str, ...]) -> bool:
    """True when domain is one of domains or a subdomain of one (sales.example.com)."""
    domain = domain.lower()
    return any(domain == known or domain.endswith("." + known) for known in domains)


def load_config(path: Path, *, signing_in: bool = False) -> Config:
    """Read and validate a config file; raises ConfigError naming the file and each problem.

    signing_in: the file may list calendars without a sign-in yet (`assistant auth` adds it).
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(str(path), [f"cannot read the file: {err}"]) from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(str(path), [f"not valid TOML: {err}"]) from err
    try:
        config = Config.model_validate(data, context={"signing_in": signing_in})
    except ValidationError as err:
        raise ConfigError(str(path), describe_validation_error(err, Config)) from err
    return _paths_relative_to(config, path.parent)


def _paths_relative_to(config: Config, folder: Path) -> Config:
    """Config with every file it names made absolute: '~' expanded, relative to the file."""

    def resolve(value: Path | None) -> Path | None:
        if value is None:
            return None
        value = value.expanduser()
        return value if value.is_absolute() else folder / value

    google = config.google.model_copy(update={
        "service_account_key_file": resolve(config.google.service_account_key_file),
        "token_file": resolve(config.google.token_file),
    })
    microsoft = config.microsoft.model_copy(update={
        "certificate_file": resolve(config.microsoft.certificate_file),
        "token_cache_file": resolve(config.microsoft.token_cache_file),
    })
    service = config.service.model_copy(update={
        "database_url": _sqlite_relative_to(config.service.database_url, folder)})
    return config.model_copy(update={"checklist": resolve(config.checklist), "google": google,
                                     "microsoft": microsoft, "service": service})


def _sqlite_relative_to(url: str, folder: Path) -> str:
    """sqlite:///name.sqlite3 is relative to the config file, like every other file it names."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix + ":memory:":
        return url
    path = Path(url[len(prefix):]).expanduser()
    return prefix + str(path if path.is_absolute() else folder / path)


def config_for_domains(domains: list[str]) -> Config:
    """Defaults for everything, with the given organisation domains (for ad-hoc previews)."""
    return Config(organisation=Organisation(domains=domains))
