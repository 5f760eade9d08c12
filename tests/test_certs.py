"""Certificate expiry (pure): the chart's renewal rules, the render record, the warnings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from meshcore import certs
from tools import localmesh

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
LATER = NOW + timedelta(days=40)


def test_a_new_release_is_rendered_now_and_first_rendered_now() -> None:
    r = certs.track_renders(None, 1, NOW)
    assert r == {"revision": 1, "renderedAt": "2026-12-04T12:00:00Z", "firstRenderedAt": "2026-12-04T12:00:00Z"}


def test_an_unchanged_release_keeps_its_record() -> None:
    first = certs.track_renders(None, 1, NOW)
    assert certs.track_renders(first, 1, LATER) == first


def test_an_upgrade_renders_now_and_keeps_the_first_render() -> None:
    first = certs.track_renders(None, 1, NOW)
    r = certs.track_renders(first, 2, LATER)
    assert r == {"revision": 2, "renderedAt": "2027-01-13T12:00:00Z", "firstRenderedAt": "2026-12-04T12:00:00Z"}


def test_a_release_deployed_before_the_record_has_unknown_dates_until_its_next_upgrade() -> None:
    r = certs.track_renders(None, 7, NOW)
    assert r == {"revision": 7, "renderedAt": None, "firstRenderedAt": None}
    assert certs.track_renders(r, 7, LATER) == r
    after = certs.track_renders(r, 8, LATER)
    assert after["renderedAt"] == "2027-01-13T12:00:00Z" and after["firstRenderedAt"] is None


def test_an_unknown_revision_changes_nothing() -> None:
    first = certs.track_renders(None, 1, NOW)
    assert certs.track_renders(first, None, LATER) == {**first, "revision": None}


MESH_VALUES = {"hubble": {"relay": {"enabled": True}}, "clustermesh": {"apiserver": {"kvstoremesh": {"enabled": True}}}}


def test_leaf_groups_follow_the_chart_rules() -> None:
    """clustermesh-apiserver leaves date from the last render (1095 days), Hubble's kept ones from
    the first install (365 days); a group whose Secrets the values do not render is absent."""
    renders = {"renderedAt": "2027-01-13T12:00:00Z", "firstRenderedAt": "2026-12-04T12:00:00Z"}
    e = certs.leaf_expiries(MESH_VALUES, renders)
    assert set(e) == {"clustermeshApiserver", "hubble"}
    assert e["clustermeshApiserver"]["expiresAt"] == "2030-01-12T12:00:00Z"  # 2027-01-13 + 1095 days
    assert e["clustermeshApiserver"]["secrets"] == [
        "clustermesh-apiserver-server-cert", "clustermesh-apiserver-admin-cert", "clustermesh-apiserver-remote-cert",
        "clustermesh-apiserver-local-cert"]
    assert e["hubble"]["expiresAt"] == "2027-12-04T12:00:00Z"  # the first install + 365 days, not the upgrade
    assert e["hubble"]["secrets"] == ["hubble-server-certs", "hubble-relay-client-certs"]
    assert "lookup" in e["hubble"]["renewal"] and "every upgrade" in e["clustermeshApiserver"]["renewal"]


def test_leaf_validity_and_presence_come_from_the_values() -> None:
    values = {"hubble": {"relay": {"enabled": False}, "ui": {"enabled": True},
                         "tls": {"auto": {"certValidityDuration": 30}}},
              "clustermesh": {"apiserver": {"tls": {"auto": {"certValidityDuration": 730}}}}}
    e = certs.leaf_expiries(values, {"renderedAt": "2026-12-04T12:00:00Z", "firstRenderedAt": None})
    assert e["hubble"] == {"secrets": ["hubble-server-certs"], "validityDays": 30,
                           "renewal": "kept from the first install (the chart's lookup)", "expiresAt": None}
    assert e["hubbleRenderedEachUpgrade"]["secrets"] == ["hubble-ui-client-certs"]
    assert e["hubbleRenderedEachUpgrade"]["expiresAt"] == "2027-01-03T12:00:00Z"
    assert e["clustermeshApiserver"]["validityDays"] == 730
    assert "hubble" not in certs.leaf_expiries({"hubble": {"enabled": False}}, {})
    assert "hubble" not in certs.leaf_expiries({"hubble": {"tls": {"auto": {"method": "cronJob"}}}}, {})


def test_expiring_lists_what_is_within_the_warning_window() -> None:
    dates = {"CA": "2027-03-01T00:00:00Z", "cls-a clustermeshApiserver": "2029-12-04T00:00:00Z",
             "cls-a hubble": "2026-11-30T00:00:00Z", "cls-b hubble": None}
    assert certs.expiring(dates, NOW) == [("CA", "2027-03-01T00:00:00Z", 86),
                                          ("cls-a hubble", "2026-11-30T00:00:00Z", -5)]
    assert certs.expiring(dates, NOW, within_days=30) == [("cls-a hubble", "2026-11-30T00:00:00Z", -5)]


def test_not_after_reads_a_real_certificate() -> None:
    cert_pem, _key = localmesh.new_mesh_ca()
    from cryptography import x509
    expected = x509.load_pem_x509_certificate(cert_pem.encode()).not_valid_after_utc
    assert certs.parse_time(certs.not_after(cert_pem)) == expected.replace(microsecond=0)
    with pytest.raises(ValueError):
        certs.not_after("not a certificate")
