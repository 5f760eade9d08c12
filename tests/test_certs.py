"""Certificate expiry (pure): the chart's renewal rules, the render record, the warnings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meshcore.chart import certs
from tools import localpki

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
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
    assert "hubble" not in certs.leaf_expiries({"hubble": {"tls": {"auto": {"method": "certmanager"}}}}, {})


def test_leaf_dates_follow_the_chart_version() -> None:
    """1.20's clustermesh leaves are valid 365 days (1.18/1.19: 1095); with the cronJob method (1.19+) the certgen
    CronJob renews every group, so no render dates them."""
    renders = {"renderedAt": "2027-01-13T12:00:00Z", "firstRenderedAt": "2026-12-04T12:00:00Z"}
    for version, days in (("1.18.12", 1095), ("1.19.6", 1095), ("1.20.0", 365)):
        e = certs.leaf_expiries(MESH_VALUES, renders, version)
        assert e["clustermeshApiserver"]["validityDays"] == days, version
    assert certs.leaf_expiries(MESH_VALUES, renders, "1.20.0")["clustermeshApiserver"]["expiresAt"] == \
        "2028-01-13T12:00:00Z"  # 2027-01-13 + 365 days
    cron = {**MESH_VALUES, "clustermesh": {"apiserver": {"tls": {"auto": {"method": "cronJob"}}}},
            "hubble": {"relay": {"enabled": True}, "tls": {"auto": {"method": "cronJob"}}}}
    e = certs.leaf_expiries(cron, renders, "1.20.0")
    assert set(e) == {"clustermeshApiserver", "hubble"}
    for group in e.values():
        assert group["expiresAt"] is None and group["renewal"] == "renewed by the chart's certgen CronJob (0 0 1 */4 *)"
    # The 1.19 chart sets no clustermesh-apiserver schedule: without one its leaves are issued once, never renewed.
    e = certs.leaf_expiries(cron, renders, "1.19.6")
    assert e["clustermeshApiserver"]["renewal"].startswith("issued once by the chart's certgen Job, never renewed")
    assert e["hubble"]["renewal"] == "renewed by the chart's certgen CronJob (0 0 1 */4 *)"
    cron["clustermesh"]["apiserver"]["tls"]["auto"]["schedule"] = "0 0 1 */2 *"
    assert certs.leaf_expiries(cron, renders, "1.19.6")["clustermeshApiserver"]["renewal"] == \
        "renewed by the chart's certgen CronJob (0 0 1 */2 *)"


def test_expiring_lists_what_is_within_the_warning_window() -> None:
    dates = {"CA": "2027-03-01T00:00:00Z", "cls-a clustermeshApiserver": "2029-12-04T00:00:00Z",
             "cls-a hubble": "2026-11-30T00:00:00Z", "cls-b hubble": None}
    assert certs.expiring(dates, NOW) == [("CA", "2027-03-01T00:00:00Z", 86),
                                          ("cls-a hubble", "2026-11-30T00:00:00Z", -5)]
    assert certs.expiring(dates, NOW, within_days=30) == [("cls-a hubble", "2026-11-30T00:00:00Z", -5)]


def test_not_after_reads_a_real_certificate() -> None:
    cert_pem, _key = localpki.new_mesh_ca()
    from cryptography import x509
    expected = x509.load_pem_x509_certificate(cert_pem.encode()).not_valid_after_utc
    assert certs.parse_time(certs.not_after(cert_pem)) == expected.replace(microsecond=0)
    with pytest.raises(ValueError):
        certs.not_after("not a certificate")


# -- the program on the mock engine: the record kept from run to run, and the warnings -------------

def _previous(rec: object) -> dict:
    from tools.render import scrub
    return scrub(rec.outputs)["clusters"]  # type: ignore[attr-defined]


def _warnings(rec: object) -> list[str]:
    return [text for level, text in rec.logs if level.lower().startswith("warn")]  # type: ignore[attr-defined]


def test_the_program_keeps_the_record_of_an_unchanged_release_and_warns_before_expiry(tmp_path) -> None:
    """The next run reads the record back (StackReference to itself): the same revision keeps its
    dates, so leaves rendered 1094 days ago warn that they expire tomorrow; others stay quiet."""
    from tests.conftest import mesh_config
    from tests.mockcloud import ComputingMocks, run

    raw = mesh_config(2)
    first = _previous(run(raw, tmp_path))
    old = (datetime.now(UTC) - timedelta(days=1094)).strftime("%Y-%m-%dT%H:%M:%SZ")
    first["cls-00000001"]["certificates"].update(renderedAt=old, firstRenderedAt=old)
    rec = run(raw, tmp_path, mocks=ComputingMocks(previous=first))
    again = _previous(rec)
    assert again["cls-00000001"]["certificates"]["renderedAt"] == old, "revision 1 again: the record is kept"
    assert again["cls-00000002"]["certificates"] == first["cls-00000002"]["certificates"]
    warned = _warnings(rec)
    assert any(w.startswith("cls-00000001: the clustermeshApiserver certificates (clustermesh-apiserver-server-cert")
               and "expires in 0 day(s)" in w and "helm upgrade cilium" in w for w in warned), warned
    assert any(w.startswith("cls-00000001: the hubble certificates") and "expired" in w
               and "kubectl -n kube-system delete secret hubble-server-certs" in w for w in warned), warned
    assert not [w for w in warned if w.startswith("cls-00000002")], warned


def test_a_renamed_cluster_keeps_its_record(tmp_path) -> None:
    from tests.conftest import mesh_config
    from tests.mockcloud import ComputingMocks, run

    raw = mesh_config(2)
    first = _previous(run(raw, tmp_path))
    first["cls-00000001"]["certificates"]["renderedAt"] = "2026-01-01T00:00:00Z"
    raw["clusters"][0]["name"] = "cls-renamed1"
    raw["clusters"][0]["context"] = "cls-00000001"
    raw["allowIdentityChange"] = ["cls-renamed1"]
    again = _previous(run(raw, tmp_path, mocks=ComputingMocks(previous=first), contexts=["cls-00000001", "cls-00000002"]))
    assert again["cls-renamed1"]["certificates"]["renderedAt"] == "2026-01-01T00:00:00Z"


def test_a_brought_ca_near_its_expiry_is_warned_about(tmp_path) -> None:
    from tests.conftest import mesh_config
    from tests.mockcloud import run

    cert, key = localpki.new_mesh_ca(days=30)
    rec = run(mesh_config(2, ca={"certificate": cert}), tmp_path, extra_config={"mesh:caPrivateKey": key},
              secret_keys=["mesh:caPrivateKey"])
    from tools.render import scrub
    assert scrub(rec.outputs)["caExpiresAt"] == {"1": certs.not_after(cert)}
    assert [w for w in _warnings(rec) if w.startswith("the mesh CA (generation 1) expires in 29 day(s)")
            and "mesh:ca.certificate" in w], _warnings(rec)
