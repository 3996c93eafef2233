"""Sending mail over SMTP with the standard library's smtplib.

STARTTLS (RFC 3207, usually port 587), implicit TLS (RFC 8314, usually 465) or, for a local relay,
none; AUTH when a username is set, the password from the environment. 4xx answers, dropped
connections and timeouts are retried with the shared backoff; 5xx answers are final, and say
which recipient or sender the server refused; a refused login is AuthFailed, for the caller to
try again once the credentials are fixed. One connection per message keeps a long-lived
service clear of half-dead sessions; volume is a few emails per meeting.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from assistant.config import Mail, secret_from_env
from assistant.errors import AssistantError, AuthFailed, ConfigError, ProviderUnavailable
from assistant.retry import RetryPolicy


class MailRejected(AssistantError):
    """The mail server refused the message for good (5xx): retrying will not help."""


class SmtpTransport:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "starttls",
        username: str = "",
        password: str = "",
        timeout_seconds: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if security not in ("starttls", "tls", "none"):
            raise ValueError(f"unknown SMTP security {security!r}")
        self.host, self.port, self.security = host, port, security
        self._username, self._password = username, password
        self._timeout = timeout_seconds
        self._retry = retry
        self._tls = tls_context or ssl.create_default_context()

    def send(self, message: EmailMessage) -> None:
        """Hand message to the server; ProviderUnavailable after retries, MailRejected at once."""
        self._retry.call(lambda: self._send_once(message),
                         describe=f"SMTP to {self.host}:{self.port}")

    def _send_once(self, message: EmailMessage) -> None:
        try:
            with self._connect() as smtp:
                if self._username:
                    smtp.login(self._username, self._password)
                refused = smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as err:
            # Not MailRejected: the message is fine, the credentials are not (yet) - the
            # service keeps it and tries again later, as it does for calendars.
            raise AuthFailed(f"{self.host} refused the login for {self._username}: "
                             f"{_words(err)}") from err
        except smtplib.SMTPRecipientsRefused as err:
            codes = {code for code, _ in err.recipients.values()}
            if all(code >= 500 for code in codes):
                raise MailRejected(f"{self.host} refused {', '.join(err.recipients)}") from err
            raise ProviderUnavailable(f"{self.host} deferred the recipients") from err
        except smtplib.SMTPResponseException as err:
            if err.smtp_code >= 500:
                raise MailRejected(f"{self.host} refused the message: {_words(err)}") from err
            raise ProviderUnavailable(f"{self.host} deferred the message: {_words(err)}") from err
        except (smtplib.SMTPException, OSError) as err:
            raise ProviderUnavailable(f"SMTP to {self.host}:{self.port} failed: {err!r}") from err
        if refused:
            raise MailRejected(f"{self.host} refused {', '.join(refused)}")

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self._timeout,
                                    context=self._tls)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self._timeout)
        if self.security == "starttls":
            try:
                smtp.starttls(context=self._tls)
            except BaseException:
                smtp.close()
                raise
        return smtp


def smtp_from_config(mail: Mail, retry: RetryPolicy = RetryPolicy()) -> SmtpTransport:
    """The SMTP transport [mail.smtp] describes; ConfigError if it or its password is missing."""
    if mail.smtp is None:
        raise ConfigError("mail.smtp", ["no SMTP server is configured: add a [mail.smtp] section"])
    settings = mail.smtp
    password = secret_from_env(settings.password_env, "mail.smtp.password_env",
                               needed=bool(settings.username))
    return SmtpTransport(settings.host, settings.port, security=settings.security,
                         username=settings.username, password=password, retry=retry)


def _words(err: smtplib.SMTPResponseException) -> str:
    message = err.smtp_error
    text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
    return f"{err.smtp_code} {text}"
