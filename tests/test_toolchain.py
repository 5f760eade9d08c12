"""The toolchain's pins and recipes (the builds themselves run in `make toolchain`)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT
from tools import toolchain


def _pinned(package: str) -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        m = re.fullmatch(rf"{re.escape(package)}==(\S+)", line.strip())
        if m:
            return m.group(1)
    raise AssertionError(f"{package} is not pinned in requirements.txt")


def test_provider_plugins_are_the_versions_the_pinned_sdks_ask_for() -> None:
    """The engine loads the plugin of exactly the version the SDK names in each registration."""
    pins = toolchain.load_pins()
    assert pins["pulumi-resource-kubernetes"]["plugin_version"] == _pinned("pulumi-kubernetes")
    assert pins["pulumi-resource-tls"]["plugin_version"] == _pinned("pulumi-tls")
    from pulumi_kubernetes import _utilities as k8s_util
    from pulumi_tls import _utilities as tls_util
    assert k8s_util.get_version() == _pinned("pulumi-kubernetes")
    assert tls_util.get_version() == _pinned("pulumi-tls")


def test_the_cli_is_not_older_than_the_python_sdk() -> None:
    """A CLI runs older SDKs, not newer ones."""
    cli = tuple(int(x) for x in toolchain.load_pins()["pulumi"]["version"].lstrip("v").split("."))
    sdk = tuple(int(x) for x in _pinned("pulumi").split("."))
    assert cli >= sdk


def test_every_component_has_a_recipe_or_says_why_it_cannot_be_built() -> None:
    pins = toolchain.load_pins()
    assert {c.name for c in toolchain.COMPONENTS} == set(pins)
    for c in toolchain.COMPONENTS:
        assert (c.build is None) == ("unavailable" in pins[c.name]), c.name


def test_each_component_is_keyed_by_its_pin_its_sources_go_and_its_recipe(tmp_path: Path) -> None:
    src = tmp_path / "toolchain" / "host"
    src.mkdir(parents=True)
    (src / "main.go").write_text("package main\n")
    host = next(c for c in toolchain.COMPONENTS if c.name == "pulumi-language-python")
    etcd = next(c for c in toolchain.COMPONENTS if c.name == "etcd")
    pin = {"source": "toolchain/host", "sdk_version": "v1"}
    k = toolchain.component_key(host, pin, go="go1.26.8", root=tmp_path)
    assert toolchain.component_key(host, pin, go="go1.26.8", root=tmp_path) == k
    assert toolchain.component_key(host, pin, go="go1.27.0", root=tmp_path) != k
    assert toolchain.component_key(host, {**pin, "sdk_version": "v2"}, go="go1.26.8", root=tmp_path) != k
    assert toolchain.component_key(etcd, pin, go="go1.26.8", root=tmp_path) != k  # another recipe
    (src / "README.md").write_text("docs do not change what is built")
    assert toolchain.component_key(host, pin, go="go1.26.8", root=tmp_path) == k
    (src / "main.go").write_text("package main // changed\n")
    assert toolchain.component_key(host, pin, go="go1.26.8", root=tmp_path) != k


def test_a_component_key_does_not_depend_on_the_other_components() -> None:
    """Changing one pin rebuilds that component only; the assembled key changes with it."""
    pins = toolchain.load_pins()
    etcd = next(c for c in toolchain.COMPONENTS if c.name == "etcd")
    kapi = next(c for c in toolchain.COMPONENTS if c.name == "kube-apiserver")
    moved = {**pins, "kube-apiserver": {**pins["kube-apiserver"], "version": "v1.99.0"}}
    assert toolchain.component_key(etcd, moved["etcd"], go="go1.26.8") == \
        toolchain.component_key(etcd, pins["etcd"], go="go1.26.8")
    assert toolchain.component_key(kapi, moved["kube-apiserver"], go="go1.26.8") != \
        toolchain.component_key(kapi, pins["kube-apiserver"], go="go1.26.8")
    assert toolchain.key(moved, go="go1.26.8") != toolchain.key(pins, go="go1.26.8")


def test_a_build_in_progress_reports_elapsed_time_modules_and_the_logs_last_line(tmp_path: Path) -> None:
    log = tmp_path / "etcd.log"
    log.write_text("$ go mod tidy\ngo: downloading go.etcd.io/bbolt v1.4.0\n"
                   "go: downloading go.uber.org/zap v1.27.0\n$ go build -trimpath -o out .\n\n")
    line = toolchain.progress_line("[6/6] etcd v3.6.16", 125.4, log)
    assert line == "[6/6] etcd v3.6.16: 2m05s, 2 modules downloaded; $ go build -trimpath -o out ."


def test_the_install_dir_defaults_under_the_users_cache_and_can_be_moved() -> None:
    assert toolchain.base_dir({}) == Path("~/.cache/tke-cilium-mesh/toolchain").expanduser()
    assert toolchain.base_dir({"MESH_TOOLCHAIN_DIR": "/opt/mesh-tools"}) == Path("/opt/mesh-tools")


def test_kubernetes_staging_modules_are_replaced_by_their_published_release() -> None:
    gomod = """module k8s.io/kubernetes
replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/apiserver => ./staging/src/k8s.io/apiserver
\tgithub.com/other/thing => github.com/fork/thing v1.0.0
)
"""
    assert toolchain._staging_replaces(gomod, "v1.34.4") == [
        ("k8s.io/api", "k8s.io/api v0.34.4"), ("k8s.io/apiserver", "k8s.io/apiserver v0.34.4")]


def test_documented_plugin_installs_name_the_versions_the_pinned_sdks_ask_for() -> None:
    """Every `pulumi plugin install resource NAME` in the docs pins the version the SDK of
    requirements.txt asks the engine for (an unpinned install takes the newest plugin)."""
    from pulumi_kubernetes import _utilities as k8s_util
    from pulumi_tls import _utilities as tls_util
    from tencentcloud_iac_pulumi import _utilities as tencent_util
    wanted = {"kubernetes": k8s_util.get_version(), "tls": tls_util.get_version(),
              "tencentcloud": tencent_util.get_version()}
    assert wanted["tencentcloud"] == _pinned("tencentcloud-iac-pulumi")
    found: dict[str, set[str]] = {}
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line in doc.read_text().splitlines():
            m = re.search(r"pulumi plugin install resource ([\w-]+)(?: (v[\w.+-]+))?", line)
            if m:
                assert m.group(2) is not None, f"{doc.name}: {line.strip()} installs an unpinned plugin"
                found.setdefault(m.group(1), set()).add(m.group(2).lstrip("v"))
    assert set(found) == set(wanted), found
    for name, versions in found.items():
        assert versions == {wanted[name]}, f"{name}: documented {versions}, the SDK asks for {wanted[name]}"
