"""The SSRF policy and the signature, on their own."""

from __future__ import annotations

import ipaddress

import pytest

from silverexport.config import Settings
from silverexport.errors import ValidationError
from silverexport.webhooks import TargetPolicy, signature_header, verify
from silverexport.webhooks.targets import forbidden_reason, parse_url


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.255.255.53",
        "172.31.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.100.100.200",
        "168.63.129.16",
        "fd00:ec2::254",
        "::1",
        "fe80::1",
        "ff02::1",
        "0.0.0.0",
        "::",
        "::ffff:10.0.0.1",
        "64:ff9b::7f00:1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "192.0.2.1",
        "198.18.0.1",
        "255.255.255.255",
    ],
)
def test_addresses_inside_our_networks_are_forbidden(address):
    assert forbidden_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_not(address):
    assert forbidden_reason(ipaddress.ip_address(address)) is None


def test_the_allow_list_takes_names_addresses_and_networks():
    policy = TargetPolicy(" hooks.internal , 10.1.0.0/16,[::1], 127.0.0.1")
    assert policy.refusal("hooks.internal", ["10.9.9.9"]) is None
    assert policy.refusal("HOOKS.internal.", ["10.9.9.9"]) is None
    assert policy.refusal("other.internal", ["10.1.2.3"]) is None
    assert policy.refusal("other.internal", ["10.2.0.1"]) is not None
    assert policy.refusal("::1", ["::1"]) is None
    assert policy.refusal("127.0.0.1", ["127.0.0.1"]) is None
    assert policy.refusal("127.0.0.2", ["127.0.0.2"]) is not None
    with pytest.raises(ValidationError, match="SILVEREXPORT_WEBHOOK_ALLOW_HOSTS"):
        TargetPolicy("ok.example, not a host!")
    with pytest.raises(ValidationError, match="SILVEREXPORT_WEBHOOK_ALLOW_HOSTS"):
        Settings.from_env({"SILVEREXPORT_WEBHOOK_ALLOW_HOSTS": "a b"})


def test_webhook_settings_are_read_and_checked():
    settings = Settings.from_env(
        {"SILVEREXPORT_WEBHOOK_RETRY_SECONDS": "0.25", "SILVEREXPORT_WEBHOOK_MAX_ATTEMPTS": "3"}
    )
    assert settings.webhook_retry_seconds == 0.25 and settings.webhook_max_attempts == 3
    assert Settings().webhook_retry_seconds == 10 and Settings().webhook_max_attempts == 12
    for name, value in (("RETRY_SECONDS", "0"), ("MAX_ATTEMPTS", "0"), ("MAX_CONCURRENT", "-1")):
        with pytest.raises(ValidationError, match=name):
            Settings.from_env({f"SILVEREXPORT_WEBHOOK_{name}": value})


def test_urls_are_parsed_strictly():
    assert parse_url("https://Hooks.Example.com:8443/a/b?x=1").raw_host == "hooks.example.com"
    assert parse_url("http://[2606:4700::1]/").raw_host == "2606:4700::1"
    for bad in ("", "http://", "mailto:x@y.z", "http://0x7f.1/", "http://a b/", "http://x/\n"):
        with pytest.raises(ValidationError):
            parse_url(bad)


def test_signatures_verify_and_refuse_what_they_should():
    body = b'{"id": "dlv_1"}'
    header = signature_header("whsec_k", body, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify("whsec_k", header, body, now=1_700_000_100)
    assert not verify("whsec_k", header, body + b" ", now=1_700_000_100)
    assert not verify("whsec_other", header, body, now=1_700_000_100)
    assert not verify("whsec_k", header, body, now=1_700_001_000)  # too old: a replay
    assert not verify(
        "whsec_k", header.replace("t=1700000000", "t=1700000001"), body, now=1_700_000_100
    )
    assert not verify("whsec_k", "v1=abc", body)
