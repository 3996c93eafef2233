"""The config file: the example is valid, and each mistake names the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant import resources
from assistant.config import load_config
from assistant.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "assistant.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.path == str(tmp_path / "assistant.toml")
    return caught.value.problems


def test_example_config_is_valid():
    config = load_config(resources.example_config_path())
    assert config.organisation.domains == ["example.com", "example.co.uk"]
    assert config.policy.virtual_minutes == 50
    assert config.customers["acme.com"].values == "in_person"
    assert config.mail is not None and config.mail.smtp is not None


def test_minimal_config_needs_only_domains(tmp_path):
    config = load_config(write(tmp_path, '[organisation]\ndomains = ["Example.COM"]\n'))
    assert config.organisation.domains == ["example.com"]
    assert config.google.calendars == [] and config.mail is None


def test_typo_in_a_section_name_suggests_the_right_one(tmp_path):
    found = problems(tmp_path, '[organisation]\ndomains = ["example.com"]\n[polcy]\n')
    assert found == [
        "polcy: unknown key (did you mean 'policy'?); allowed here: organisation, detection, "
        "policy, customers, organisers, sync, google, microsoft, mail, service, checklist"
    ]


def test_typo_inside_a_nested_section(tmp_path):
    text = '[organisation]\ndomains = ["example.com"]\n[mail]\nsender = "a@example.com"\n' \
           '[mail.smtp]\nhost = "smtp"\npasword_env = "X"\n'
    (found,) = problems(tmp_path, text)
    assert found.startswith("mail.smtp.pasword_env: unknown key (did you mean 'password_env'?)")


def test_typo_inside_a_customer(tmp_path):
    text = '[organisation]\ndomains = ["example.com"]\n[customers."acme.com"]\nvalue = "virtual"\n'
    (found,) = problems(tmp_path, text)
    assert found.startswith("customers.acme.com.value: unknown key (did you mean 'values'?)")


def test_wrong_values_say_what_is_allowed(tmp_path):
    text = '[organisation]\ndomains = ["example.com", "not a domain"]\n' \
           '[policy]\nvirtual_minutes = 40\ntravel = "sometimes"\n'
    found = problems(tmp_path, text)
    assert "organisation.domains[1]: 'not a domain' is not a domain name; write it like " \
           "'example.com'" in found
    assert "policy.virtual_minutes: Input should be 45 or 50 (got 40)" in found
    assert "policy.travel: Input should be 'allowed' or 'not_allowed' (got 'sometimes')" in found


def test_missing_domains_are_reported(tmp_path):
    assert problems(tmp_path, '[organisation]\nname = "x"\n') == [
        "organisation.domains: required key is missing"]


def test_watched_calendar_outside_the_organisation_is_refused(tmp_path):
    text = ('[organisation]\ndomains = ["example.com"]\n[google]\ncalendars = ["eve@acme.com"]\n'
            'token_file = "t.json"\n')
    (found,) = problems(tmp_path, text)
    assert found.startswith("google.calendars: eve@acme.com is outside organisation.domains")


def test_secrets_do_not_belong_in_the_file(tmp_path):
    text = '[organisation]\ndomains = ["example.com"]\n[mail]\nsender = "a@example.com"\n' \
           '[mail.imap]\nhost = "imap"\npassword = "hunter2"\n'
    (found,) = problems(tmp_path, text)
    assert "mail.imap.password: unknown key (did you mean 'password_env'?)" in found
    assert "hunter2" not in found


def test_broken_toml_names_the_line(tmp_path):
    (found,) = problems(tmp_path, "[organisation\n")
    assert found.startswith("not valid TOML:") and "line 1" in found


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "nope.toml")


def test_own_checklist_is_relative_to_the_config_file(tmp_path):
    config = load_config(write(tmp_path, 'checklist = "mine.toml"\n[organisation]\n'
                                         'domains = ["example.com"]\n'))
    assert config.checklist == tmp_path / "mine.toml"


def test_google_calendars_need_a_sign_in(tmp_path):
    text = '[organisation]\ndomains = ["example.com"]\n[google]\ncalendars = ["a@example.com"]\n'
    [problem] = problems(tmp_path, text)
    assert problem.startswith("google: calendars are set but Google has no sign-in")
    assert "service_account_key_file" in problem and "assistant auth google" in problem


def test_google_takes_one_sign_in_not_two(tmp_path):
    text = ('[organisation]\ndomains = ["example.com"]\n[google]\n'
            'service_account_key_file = "k.json"\ntoken_file = "t.json"\n')
    assert problems(tmp_path, text) == [
        "google: set service_account_key_file or token_file, not both"
    ]


def test_secret_files_are_found_relative_to_the_config_file(tmp_path):
    text = ('[organisation]\ndomains = ["example.com"]\n[google]\ncalendars = ["a@example.com"]\n'
            'service_account_key_file = "secrets/key.json"\n')
    config = load_config(write(tmp_path, text))
    assert config.google.service_account_key_file == tmp_path / "secrets" / "key.json"


def test_mail_secrets_come_from_the_environment_and_their_absence_names_the_variable(
    tmp_path, monkeypatch
):
    from assistant.errors import ConfigError
    from assistant.reply_tokens import token_secret
    from integrations.imap_inbox import ImapInbox
    from integrations.smtp_mail import smtp_from_config

    text = ('[organisation]\ndomains = ["example.com"]\n[mail]\nsender = "a@example.com"\n'
            '[mail.smtp]\nhost = "smtp.example.com"\nusername = "a@example.com"\n'
            '[mail.imap]\nhost = "imap.example.com"\n')
    mail = load_config(write(tmp_path, text)).mail
    for name in ("ASSISTANT_SMTP_PASSWORD", "ASSISTANT_IMAP_PASSWORD", "ASSISTANT_TOKEN_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="ASSISTANT_SMTP_PASSWORD is not set"):
        smtp_from_config(mail)
    with pytest.raises(ConfigError, match="ASSISTANT_IMAP_PASSWORD is not set"):
        ImapInbox.from_config(mail)
    monkeypatch.setenv("ASSISTANT_TOKEN_SECRET", "too-short")
    with pytest.raises(ConfigError, match="holds 9 bytes") as error:
        token_secret(mail)
    assert "too-short" not in str(error.value)
    monkeypatch.setenv("ASSISTANT_SMTP_PASSWORD", "pw")
    assert smtp_from_config(mail).host == "smtp.example.com"


def test_assistant_auth_reads_a_config_whose_sign_in_it_is_about_to_add(tmp_path):
    text = '[organisation]\ndomains = ["example.com"]\n[google]\ncalendars = ["a@example.com"]\n'
    config = load_config(write(tmp_path, text), signing_in=True)
    assert config.google.calendars == ["a@example.com"]


@pytest.mark.parametrize(("mail", "required"), [
    ("", False),  # nothing says which header is our server's: a sender could write one
    ('dmarc_authserv_id = "mx.example.com"', True),
    ('dmarc_authserv_id = "mx.example.com"\nrequire_dmarc = false', False),
    ("require_dmarc = true", True),
])
def test_dmarc_is_required_by_default_where_our_servers_verdict_can_be_told(
        tmp_path, mail, required):
    config = load_config(write(tmp_path, '[organisation]\ndomains = ["example.com"]\n'
                                         f'[mail]\nsender = "bot@example.com"\n{mail}\n'))
    assert config.mail is not None and config.mail.dmarc_required is required
