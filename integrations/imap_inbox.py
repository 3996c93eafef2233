"""The assistant's inbox over IMAP, with imapclient.

Replies are read from a folder by UID and moved to a "processed" folder only once the caller
has handled them: a crash in between leaves the message where it was, so it is read again and
never lost (the caller recognises a repeat by its Message-ID). A message the caller could not
handle goes to a "failed" folder instead, for a person to look at: never deleted, and never in
front of the next reply again. MOVE (RFC 6851) is used where
the server offers it, else COPY, flag deleted and expunge. TLS, STARTTLS or, for a local test
server, none. Connection trouble is a ProviderUnavailable, retried by the caller's next poll.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import imapclient
from imapclient.exceptions import IMAPClientError

from assistant.config import Mail, secret_from_env
from assistant.errors import AuthFailed, ConfigError, ProviderUnavailable
from assistant.ports import InboundMail

FETCH_BATCH = 50  # messages fetched per round trip
MAX_MESSAGE_BYTES = 5 * 1024 * 1024  # replies are short; anything bigger is not read
# What is fetched of a message too big to read: enough to say which one it was.
_NAMING_FIELDS = "BODY.PEEK[HEADER.FIELDS (FROM MESSAGE-ID)]"
_NAMING_REPLY = b"BODY[HEADER.FIELDS (FROM MESSAGE-ID)]"


class ImapInbox:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str,
        password: str,
        security: str = "tls",
        folder: str = "INBOX",
        processed_folder: str = "Processed",
        failed_folder: str = "Failed",
        timeout_seconds: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.folder, self.processed_folder = folder, processed_folder
        self.failed_folder = failed_folder
        self._username, self._password = username, password
        self._timeout = timeout_seconds
        self._tls = tls_context or ssl.create_default_context()
        self._client: imapclient.IMAPClient | None = None

    def messages(self) -> Iterator[InboundMail]:
        """Every message waiting in the folder, oldest first."""
        client = self._connected()
        try:
            client.select_folder(self.folder)
            uids = sorted(client.search(["ALL"]))
            for start in range(0, len(uids), FETCH_BATCH):
                chunk = uids[start : start + FETCH_BATCH]
                sizes = client.fetch(chunk, ["RFC822.SIZE"])
                small = [uid for uid in chunk if sizes[uid][b"RFC822.SIZE"] <= MAX_MESSAGE_BYTES]
                big = [uid for uid in chunk if uid not in small]
                bodies = client.fetch(small, ["BODY.PEEK[]"]) if small else {}
                heads = client.fetch(big, [_NAMING_FIELDS]) if big else {}
                for uid in chunk:
                    if uid in bodies:
                        yield InboundMail(uid, bodies[uid][b"BODY[]"])
                    else:
                        yield InboundMail(uid, b"", heads.get(uid, {}).get(_NAMING_REPLY, b""))
        except (IMAPClientError, OSError) as err:
            self.close()
            raise ProviderUnavailable(
                f"reading {self.folder} on {self.host} failed: {err}") from err

    def mark_processed(self, uid: int) -> None:
        """Move a handled message out of the way, into the processed folder."""
        self._move(uid, self.processed_folder)

    def mark_failed(self, uid: int) -> None:
        """Move a message that could not be handled into the failed folder."""
        self._move(uid, self.failed_folder)

    def _move(self, uid: int, folder: str) -> None:
        client = self._connected()
        try:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.select_folder(self.folder)
            if client.has_capability("MOVE"):
                client.move([uid], folder)
            else:
                client.copy([uid], folder)
                client.delete_messages([uid])
                if client.has_capability("UIDPLUS"):
                    client.uid_expunge([uid])
                else:
                    client.expunge()
        except (IMAPClientError, OSError) as err:
            self.close()
            raise ProviderUnavailable(
                f"moving message {uid} to {folder} on {self.host} failed: {err}") from err

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.logout()
            except (IMAPClientError, OSError):
                self._client.shutdown()  # the connection is gone already: just drop it
            self._client = None

    @classmethod
    def from_config(cls, mail: Mail) -> ImapInbox:
        """The inbox [mail.imap] describes; ConfigError if it or its password is missing."""
        if mail.imap is None:
            raise ConfigError("mail.imap", ["no IMAP inbox is configured: add [mail.imap]"])
        settings = mail.imap
        return cls(settings.host, settings.port, username=settings.username or mail.sender,
                   password=secret_from_env(settings.password_env, "mail.imap.password_env"),
                   security=settings.security, folder=settings.folder,
                   processed_folder=settings.processed_folder,
                   failed_folder=settings.failed_folder)

    def _connected(self) -> imapclient.IMAPClient:
        if self._client is not None:
            return self._client
        try:
            client = imapclient.IMAPClient(
                self.host, port=self.port, ssl=self.security == "tls",
                ssl_context=self._tls, timeout=self._timeout,
            )
            if self.security == "starttls":
                client.starttls(self._tls)
        except (IMAPClientError, OSError) as err:
            raise ProviderUnavailable(f"cannot reach IMAP {self.host}:{self.port}: {err}") from err
        try:
            client.login(self._username, self._password)
        except IMAPClientError as err:
            client.shutdown()
            raise AuthFailed(f"IMAP {self.host} refused the login for {self._username}") from err
        self._client = client
        return client
