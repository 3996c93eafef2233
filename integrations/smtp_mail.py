"""Sending mail over SMTP with the standard library's smtplib.

STARTTLS (RFC 3207, usually port 587), implicit TLS (RFC 8314, usually 465) or, for a local relay,
none; AUTH when a username is set, the password from the environment. 4xx answers, dropped
connections and timeouts are retried with the shared backoff; 5xx answers are final, and say
which recipient or sender the server refused; a refused login is AuthFailed, for the caller to
try again once the credentials are fixed.

Each thread keeps its connection open for its next message (smtplib.SMTP is not thread-safe):
a connect, EHLO, STARTTLS and AUTH per message would not hand a thousand questions over within
seconds. A connection is dropped after any error, so the next message starts clean; once it
has been idle longer than `idle_seconds`, before the server (Postfix after 300 s, Exchange
Online sooner) surely has; and when its thread ends. close() QUITs the rest. A server that
closed a kept connection anyway is normal, not a fault: the message goes at once over a new
connection, without counting as a retry.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import ssl
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from assistant.config import Mail, secret_from_env
from assistant.errors import AssistantError, AuthFailed, ConfigError, ProviderUnavailable
from assistant.ports import MessageToSend
from assistant.retry import RetryPolicy

log = logging.getLogger(__name__)


class MailRejected(AssistantError):
    """The mail server refused the message for good (5xx): retrying will not help."""


@dataclass(eq=False)  # one per connection: compared by identity
class _Kept:
    """A thread's open connection, and when it last finished a message (monotonic seconds)."""

    smtp: smtplib.SMTP
    last_used: float


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
        idle_seconds: float = 60.0,
        retry: RetryPolicy = RetryPolicy(),
        tls_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if security not in ("starttls", "tls", "none"):
            raise ValueError(f"unknown SMTP security {security!r}")
        self.host, self.port, self.security = host, port, security
        self._username, self._password = username, password
        self._timeout, self._idle = timeout_seconds, idle_seconds
        self._retry = retry
        self._tls = tls_context or ssl.create_default_context()
        self._clock = clock
        self._local = threading.local()
        # Every thread's, so close() reaches them all; weak, so a thread that ends takes its
        # connection with it (see _connection) rather than leaving it open until close().
        self._kept: weakref.WeakSet[_Kept] = weakref.WeakSet()
        self._kept_lock = threading.Lock()

    def send(self, message: MessageToSend) -> None:
        """Hand message to the server; ProviderUnavailable after retries, MailRejected at once."""
        self._retry.call(lambda: self._send_once(message),
                         describe=f"SMTP to {self.host}:{self.port}")

    def close(self) -> None:
        """QUIT and close every kept connection, whichever thread opened it."""
        with self._kept_lock:
            kept = list(self._kept)
            self._kept.clear()
        for connection in kept:
            _quit(connection.smtp)

    def _send_once(self, message: MessageToSend) -> None:
        try:
            _raise_refused(self.host, self._send_reconnecting(message))
        except (smtplib.SMTPException, OSError) as err:
            self._drop()  # the session's state is unknown: the next message starts clean
            raise self._error_from(err) from err
        except BaseException:
            self._drop()
            raise

    def _send_reconnecting(self, message: MessageToSend) -> dict[str, tuple[int, bytes]]:
        """sendmail's refusals, on this thread's connection or, if it was closed, a new one."""
        kept, reused = self._connection()
        try:
            return self._send_on(kept, message)
        except (smtplib.SMTPException, OSError) as err:
            if not (reused and _hung_up(err)):
                raise
            log.debug("%s:%s closed a kept connection (%s); connecting again",
                      self.host, self.port, type(err).__name__)
        self._drop()
        kept, _ = self._connection()
        return self._send_on(kept, message)

    def _error_from(self, err: smtplib.SMTPException | OSError) -> AssistantError:
        """The assistant's error for what smtplib raised."""
        if isinstance(err, smtplib.SMTPAuthenticationError):
            # Not MailRejected: the message is fine, the credentials are not (yet) - the
            # service keeps it and tries again later, as it does for calendars.
            return AuthFailed(f"{self.host} refused the login for {self._username}: "
                              f"{_words(err)}")
        if isinstance(err, smtplib.SMTPRecipientsRefused):
            codes = {code for code, _ in err.recipients.values()}
            if all(code >= 500 for code in codes):
                return MailRejected(f"{self.host} refused {', '.join(err.recipients)}")
            return ProviderUnavailable(f"{self.host} deferred the recipients")
        if isinstance(err, smtplib.SMTPResponseException):
            if err.smtp_code >= 500:
                return MailRejected(f"{self.host} refused the message: {_words(err)}")
            return ProviderUnavailable(f"{self.host} deferred the message: {_words(err)}")
        return ProviderUnavailable(f"SMTP to {self.host}:{self.port} failed: {err!r}")

    def _send_on(self, kept: _Kept, message: MessageToSend) -> dict[str, tuple[int, bytes]]:
        # The stored bytes as they are: sendmail only dot-stuffs them (RFC 5321 4.5.2).
        options = ("SMTPUTF8", "BODY=8BITMIME") if message.international else ()
        refused = kept.smtp.sendmail(message.sender, list(message.recipients), message.data,
                                     mail_options=options)
        kept.last_used = self._clock()
        return refused

    def _connection(self) -> tuple[_Kept, bool]:
        """This thread's connection and whether it carried a message before; new if none is fit."""
        kept: _Kept | None = getattr(self._local, "kept", None)
        if kept is not None and self._fit(kept):
            return kept, True
        self._drop()
        kept = _Kept(self._open(), self._clock())
        weakref.finalize(kept, kept.smtp.close)  # when its thread ends, and the local with it
        self._local.kept = kept
        with self._kept_lock:
            self._kept.add(kept)
        return kept, False

    def _fit(self, kept: _Kept) -> bool:
        # smtplib clears sock when it closes (after a 421, or close() from another thread).
        return kept.smtp.sock is not None and self._clock() - kept.last_used < self._idle

    def _drop(self) -> None:
        """Forget and close this thread's connection (after an error, or idle for too long)."""
        # No QUIT: after an error, or on a stale connection, it could wait the whole timeout.
        kept: _Kept | None = getattr(self._local, "kept", None)
        self._local.kept = None
        if kept is None:
            return
        with self._kept_lock:
            self._kept.discard(kept)
        kept.smtp.close()

    def _open(self) -> smtplib.SMTP:
        smtp = self._connect()
        try:
            if self._username:
                smtp.login(self._username, self._password)
        except BaseException:
            smtp.close()
            raise
        return smtp

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


def _hung_up(err: smtplib.SMTPException | OSError) -> bool:
    """Whether err is how a server that closed an idle connection looks to the next message."""
    # The server answered the first command with 421 (closing), or the socket is gone. Any
    # other answer is the server's word on this message (SMTPException is an OSError too).
    if isinstance(err, smtplib.SMTPSenderRefused):
        return err.smtp_code == 421
    return (isinstance(err, smtplib.SMTPServerDisconnected)
            or not isinstance(err, smtplib.SMTPException))


def _raise_refused(host: str, refused: dict[str, tuple[int, bytes]]) -> None:
    """MailRejected if the server accepted the message for only some of its recipients."""
    if refused:
        raise MailRejected(f"{host} refused {', '.join(refused)}")


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        with contextlib.suppress(smtplib.SMTPException, OSError):  # it goes either way
            smtp.quit()
    finally:
        smtp.close()  # quit() skips it when QUIT fails


def _words(err: smtplib.SMTPResponseException) -> str:
    message = err.smtp_error
    text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
    return f"{err.smtp_code} {text}"
