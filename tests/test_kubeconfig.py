"""Kubeconfig lookup, context checks, and the minimal per-cluster kubeconfig."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from meshcore.mesh import kubeconfig as kc


def _kubeconfig(contexts: dict[str, str], extra_user: dict | None = None) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "contexts": [{"name": c, "context": {"cluster": cl, "user": f"u-{cl}"}} for c, cl in contexts.items()],
        "clusters": [{"name": cl, "cluster": {"server": f"https://{cl}.example", "certificate-authority": "ca.crt"}}
                     for cl in contexts.values()],
        "users": [{"name": f"u-{cl}", "user": extra_user or {"token": f"token-{cl}"}} for cl in contexts.values()],
    })


def test_file_precedence(tmp_path: Path) -> None:
    """$MESH_KUBECONFIG_FILE (this run's override), then mesh:kubeconfig, then every path of $KUBECONFIG, then
    ~/.kube/config; each choice says where it came from, and an error about it names that setting."""
    home = str(Path("~").expanduser())
    both = {"KUBECONFIG": "/a:/b", "MESH_KUBECONFIG_FILE": "/ci/kubeconfig"}
    cases = [
        ("~/mesh.yaml", both, ["/ci/kubeconfig"], "$MESH_KUBECONFIG_FILE", "(mesh:kubeconfig ~/mesh.yaml is not used)"),
        (None, both, ["/ci/kubeconfig"], "$MESH_KUBECONFIG_FILE", "overrides mesh:kubeconfig and $KUBECONFIG"),
        ("~/mesh.yaml", {"KUBECONFIG": "/a", "MESH_KUBECONFIG_FILE": ""}, [f"{home}/mesh.yaml"], "mesh:kubeconfig",
         "from the stack's mesh:kubeconfig"),
        (None, {"KUBECONFIG": "/a:/b"}, ["/a", "/b"], "$KUBECONFIG", "the stack sets no mesh:kubeconfig"),
        (None, {"KUBECONFIG": ":"}, [f"{home}/.kube/config"], "mesh:kubeconfig", "the default"),
        (None, {}, [f"{home}/.kube/config"], "mesh:kubeconfig", "the default"),
    ]
    for configured, environ, files, key, origin in cases:
        source = kc.kubeconfig_files(configured, environ)
        assert (list(source.files), source.key) == (files, key), (configured, environ)
        assert origin in source.origin, (configured, environ, source.origin)
    assert "unset it to use mesh:kubeconfig" in kc.kubeconfig_files("~/m", both).change
    assert "$MESH_KUBECONFIG_FILE" in kc.kubeconfig_files("~/m", {}).change


def test_context_errors_say_where_the_kubeconfig_came_from(tmp_path: Path) -> None:
    """A missing context names the file, the setting that chose it, and how to read another one."""
    f = tmp_path / "config"
    f.write_text(_kubeconfig({"cls-a": "cls-a"}))
    source = kc.kubeconfig_files("~/mesh.yaml", {"MESH_KUBECONFIG_FILE": str(f)})
    config = kc.load(source.files, lambda p: Path(p).read_text())
    [issue] = kc.check_contexts(config, [("mesh:clusters[1].context", "cls-b")], source)
    assert issue.key == "mesh:clusters[1].context"
    assert f"'cls-b' is not in the kubeconfig {f} (from $MESH_KUBECONFIG_FILE, which overrides" in issue.message
    assert issue.message.endswith("point $MESH_KUBECONFIG_FILE at the merged kubeconfig of the mesh clusters, or "
                                  "unset it to use mesh:kubeconfig")


def test_missing_context_is_reported_per_cluster(tmp_path: Path) -> None:
    """Each missing context names the cluster entry's key and lists what the kubeconfig has."""
    f = tmp_path / "config"
    f.write_text(_kubeconfig({"cls-a": "cls-a"}))
    config = kc.load([str(f)], lambda p: Path(p).read_text())
    issues = kc.check_contexts(config, [("mesh:clusters[0].context", "cls-a"), ("mesh:clusters[1].context", "cls-b")])
    assert [i.key for i in issues] == ["mesh:clusters[1].context"]
    assert "'cls-b' is not in the kubeconfig" in issues[0].message and "its contexts: cls-a" in issues[0].message


def test_merge_first_file_wins(tmp_path: Path) -> None:
    """Like kubectl: an entry named in two files is taken from the first."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text(_kubeconfig({"cls-a": "cls-a"}))
    b.write_text(_kubeconfig({"cls-a": "other", "cls-b": "cls-b"}))
    config = kc.load([str(a), str(b)], lambda p: Path(p).read_text())
    assert config.contexts["cls-a"]["cluster"] == "cls-a"
    assert set(config.contexts) == {"cls-a", "cls-b"}


def test_minimal_kubeconfig_holds_one_context_with_files_inlined(tmp_path: Path) -> None:
    """The provider's kubeconfig has only its own context, and no path into this machine."""
    (tmp_path / "ca.crt").write_bytes(b"CA-BYTES")
    f = tmp_path / "config"
    f.write_text(_kubeconfig({"cls-a": "cls-a", "cls-b": "cls-b"}))
    config = kc.load([str(f)], lambda p: Path(p).read_text())
    doc = yaml.safe_load(kc.minimal(config, "cls-b", lambda p: Path(p).read_bytes()))
    assert doc["current-context"] == "cls-b"
    assert [c["name"] for c in doc["contexts"]] == ["cls-b"]
    assert [c["name"] for c in doc["clusters"]] == ["cls-b"]
    assert doc["users"] == [{"name": "u-cls-b", "user": {"token": "token-cls-b"}}]
    cluster = doc["clusters"][0]["cluster"]
    assert "certificate-authority" not in cluster
    assert base64.b64decode(cluster["certificate-authority-data"]) == b"CA-BYTES"
    assert "token-cls-a" not in yaml.safe_dump(doc)


def test_a_kubeconfig_that_is_not_yaml_is_reported_without_its_text(tmp_path: Path) -> None:
    """PyYAML's messages quote the lines around the problem; in a kubeconfig those are tokens and keys."""
    path = tmp_path / "config"
    path.write_text("apiVersion: v1\nusers:\n- name: admin\n  user:\n    token: SECRET-TOKEN-4f1c: x\n")
    source = kc.kubeconfig_files(str(path), {})
    got = kc.minimal_kubeconfigs(source, [("cls-a", "mesh:clusters[0].context", "cls-a")])
    [issue] = got.issues
    assert issue.key == "mesh:kubeconfig" and "not valid YAML" in issue.message and "line 5" in issue.message
    assert "SECRET-TOKEN" not in issue.message
    assert "SECRET-TOKEN" not in repr(got)


def test_read_credentials_stay_out_of_reprs(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": "SECRET-TOKEN-77aa"}}],
        "contexts": [{"name": "cls-a", "context": {"cluster": "c", "user": "u"}}]}))
    got = kc.minimal_kubeconfigs(kc.kubeconfig_files(str(path), {}), [("cls-a", "mesh:clusters[0].context", "cls-a")])
    assert "SECRET-TOKEN-77aa" in got.configs["cls-a"]
    assert "SECRET-TOKEN-77aa" not in repr(got) and "SECRET-TOKEN-77aa" not in repr(kc.load([str(path)], lambda p: Path(p).read_text()))


def test_the_program_reports_a_kubeconfig_error_once(tmp_path: Path, monkeypatch) -> None:
    """The program logs each problem as an error of its own; the exception it ends with (which the language host
    logs too) only counts them, so `pulumi preview` prints the problem once (tests/e2e/test_engine_messages.py)."""
    import pytest

    from components.program import InvalidConfig
    from tests.conftest import mesh_config
    from tests.mockcloud import run
    from tools.mockengine import Recording

    monkeypatch.delenv("MESH_KUBECONFIG_FILE", raising=False)
    missing = tmp_path / "no-such-kubeconfig"
    recording = Recording(project="tke-cilium-mesh", stack="test")
    with pytest.raises(InvalidConfig) as exc:
        run(mesh_config(2), tmp_path, extra_config={"mesh:kubeconfig": str(missing)}, recording=recording)
    [issue] = exc.value.issues
    assert issue.key == "mesh:kubeconfig" and f"cannot read kubeconfig {missing}" in issue.message
    assert [m for _, m in recording.logs if str(missing) in m] == [issue.line()]
    assert [lvl for lvl, m in recording.logs if str(missing) in m] == ["error"]
    assert str(exc.value) == "the stack configuration has 1 problem, reported above"
