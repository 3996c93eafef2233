"""Sending the assistant's mail through Microsoft Graph, from a mailbox the admin connected.

An option for organisations on Microsoft 365 that would rather not run SMTP: POST
/users/{sender}/sendMail with the whole message in MIME format, base64-encoded as text/plain
(https://learn.microsoft.com/en-us/graph/outlook-send-mime-message), so every header the
assistant sets (Reply-To with the token, Auto-Submitted) and both alternatives arrive as built.
Needs the Mail.Send permission. Errors and retries are GraphApi's.
"""

from __future__ import annotations

import base64

from assistant.ports import MessageToSend
from integrations.graph_api import GraphApi, GraphRequest


class GraphMailTransport:
    def __init__(self, api: GraphApi, sender: str) -> None:
        self.api = api
        self.sender = sender

    def send(self, message: MessageToSend) -> None:
        mime = base64.b64encode(message.data)
        self.api.call(GraphRequest("POST", f"/users/{self.sender}/sendMail", self.sender,
                                   headers={"Content-Type": "text/plain"}, content=mime))
