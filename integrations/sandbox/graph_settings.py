"""A mailbox's settings, as the Graph emulator serves them (GET /users/{id}/mailboxSettings).

After https://learn.microsoft.com/en-us/graph/api/user-get-mailboxsettings: the whole
mailboxSettings resource (https://learn.microsoft.com/en-us/graph/api/resources/mailboxsettings)
or one of its properties at /mailboxSettings/{property}: an object property (language,
workingHours, ...) comes as that object, a string one (timeZone, dateFormat, ...) as
{"value": ...}, each with its @odata.context. language is a localeInfo
(https://learn.microsoft.com/en-us/graph/api/resources/localeinfo): "locale" is the language
and country/region the user chose in Outlook ("en-US", "de-DE"), "displayName" its name in
English, as Windows names cultures ("German (Germany)"). The other settings are those of a
fresh mailbox, as in the page's first example. The call needs MailboxSettings.Read or
MailboxSettings.ReadWrite, delegated or application; without it Graph answers 403
ErrorAccessDenied.
"""

from __future__ import annotations

from typing import Any

READ_PERMISSIONS = frozenset({"MailboxSettings.Read", "MailboxSettings.ReadWrite"})
DEFAULT_LOCALE = "en-US"
# The locales a sandbox mailbox may have, with their English display names.
DISPLAY_NAMES = {
    "en-US": "English (United States)", "en-GB": "English (United Kingdom)",
    "en-IE": "English (Ireland)", "en-AU": "English (Australia)", "en-CA": "English (Canada)",
    "de-DE": "German (Germany)", "de-AT": "German (Austria)", "de-CH": "German (Switzerland)",
    "fr-FR": "French (France)", "fr-BE": "French (Belgium)", "fr-CA": "French (Canada)",
    "fr-CH": "French (Switzerland)", "es-ES": "Spanish (Spain)", "es-MX": "Spanish (Mexico)",
    "es-US": "Spanish (United States)", "it-IT": "Italian (Italy)",
    "nl-NL": "Dutch (Netherlands)", "pt-BR": "Portuguese (Brazil)",
    "pt-PT": "Portuguese (Portugal)", "pl-PL": "Polish (Poland)", "ja-JP": "Japanese (Japan)",
}


def checked_locale(locale: str) -> str:
    """locale, if the sandbox knows its name; ValueError (a test's mistake) if not."""
    if locale not in DISPLAY_NAMES:
        raise ValueError(f"the Graph sandbox has no locale {locale!r}; it has "
                         f"{sorted(DISPLAY_NAMES)}")
    return locale


def mailbox_settings(locale: str) -> dict[str, Any]:
    """Every setting of a mailbox whose user chose locale."""
    return {
        "automaticRepliesSetting": {
            "status": "disabled", "externalAudience": "all",
            "scheduledStartDateTime": {"dateTime": "2026-01-01T08:00:00.0000000",
                                       "timeZone": "UTC"},
            "scheduledEndDateTime": {"dateTime": "2026-01-02T08:00:00.0000000",
                                     "timeZone": "UTC"},
            "internalReplyMessage": "", "externalReplyMessage": "",
        },
        "timeZone": "UTC",
        "language": {"locale": locale, "displayName": DISPLAY_NAMES.get(locale, locale)},
        "workingHours": {
            "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            "startTime": "08:00:00.0000000", "endTime": "17:00:00.0000000",
            "timeZone": {"name": "UTC"},
        },
        "userPurpose": {"value": "user"},
        "dateFormat": "M/d/yyyy",
        "timeFormat": "h:mm tt",
        "delegateMeetingMessageDeliveryOptions": "sendToDelegateOnly",
    }


def answer(graph_url: str, address: str, locale: str, prop: str | None,
           select: str | None) -> dict[str, Any] | None:
    """The JSON body for the whole resource (prop None, $select honoured) or one property;
    None for a property mailboxSettings does not have."""
    settings = mailbox_settings(locale)
    context = f"{graph_url}/$metadata#users('{address}')/mailboxSettings"
    if prop is None:
        wanted = [name.strip() for name in (select or "").split(",") if name.strip()]
        chosen = {k: v for k, v in settings.items() if not wanted or k in wanted}
        return {"@odata.context": context, **chosen}
    if prop not in settings:
        return None
    value = settings[prop]
    body = value if isinstance(value, dict) else {"value": value}
    return {"@odata.context": f"{context}/{prop}", **body}
