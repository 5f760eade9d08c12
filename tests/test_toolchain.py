"""The toolchain's pins and recipes (the builds themselves run in `make toolchain`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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


CILIUM_1_18_GOMOD = """module github.com/cilium/cilium

go 1.24.0

require (
\tgithub.com/osrg/gobgp/v3 v3.37.0
\tsigs.k8s.io/controller-tools v0.16.5
)

// Using private fork of controller-tools. See commit msg for more context
// as to why we are using a private fork.
replace sigs.k8s.io/controller-tools => github.com/cilium/controller-tools v0.16.5-1

replace github.com/osrg/gobgp/v3 => github.com/cilium/gobgp/v3 v3.0.0-20250717193620-26a4abb75464 // fork

tool (
\tgithub.com/cilium/deepequal-gen
)
"""


def test_cilium_replaces_are_copied_into_the_wrapper() -> None:
    """go ignores a dependency's replaces: the wrapper must carry cilium's own, by published modules."""
    assert toolchain._published_replaces(CILIUM_1_18_GOMOD) == [
        ("sigs.k8s.io/controller-tools", "github.com/cilium/controller-tools v0.16.5-1"),
        ("github.com/osrg/gobgp/v3", "github.com/cilium/gobgp/v3 v3.0.0-20250717193620-26a4abb75464")]
    block = "replace (\n\ta v1.0.0 => b v1.1.0\n\tc => d v2.0.0 // why\n)\nrequire e v1.0.0\n"
    assert toolchain._published_replaces(block) == [("a v1.0.0", "b v1.1.0"), ("c", "d v2.0.0")]


def test_a_replace_by_a_directory_cannot_be_copied() -> None:
    """A directory of the upstream repository is not in its module zip: fail, naming it, rather than drop it."""
    with pytest.raises(toolchain.ToolchainError, match=r"github.com/cilium/proxy => \./proxy"):
        toolchain._published_replaces(CILIUM_1_18_GOMOD + "replace github.com/cilium/proxy => ./proxy\n")


def test_the_pins_own_replaces_win_and_upstreams_go_sets_the_godebug_defaults() -> None:
    extra = "github.com/osrg/gobgp/v3 => github.com/cilium/gobgp/v3 v3.0.0-2026\nx/y => x/y v0.1.0"
    replaces, godebug = toolchain._cilium_wrapper(CILIUM_1_18_GOMOD, extra)
    assert replaces == [("sigs.k8s.io/controller-tools", "github.com/cilium/controller-tools v0.16.5-1"),
                        ("github.com/osrg/gobgp/v3", "github.com/cilium/gobgp/v3 v3.0.0-2026"),
                        ("x/y", "x/y v0.1.0")]
    assert godebug == ["godebug default=go1.24"]


def test_the_cilium_version_stamp_is_what_pkg_version_parses() -> None:
    """pkg/version appends " go version GO OS/ARCH" and FromString wants exactly 7 fields."""
    info = {"Version": "v1.18.3", "Time": "2025-10-22T21:44:47Z",
            "Origin": {"VCS": "git", "Hash": "c16016890116f9fc6bf8d90e3ffe0f4e91ae8097"}}
    stamp = toolchain._cilium_version_stamp(info)
    assert stamp == "1.18.3 c160168901 2025-10-22T21:44:47Z"
    assert len(f"{stamp} go version go1.26.8 linux/amd64".split(" ")) == 7
    assert toolchain._cilium_version_stamp({"Version": "v1.20.2", "Time": "t"}) == "1.20.2 unknown t"


def test_one_clustermesh_apiserver_per_supported_chart_minor() -> None:
    """Each minor meshcore.chart.versions supports has its own component, at a patch of that minor."""
    from meshcore.chart import versions
    pins = toolchain.load_pins()
    cilium = [c for c in toolchain.COMPONENTS if c.name.startswith("clustermesh-apiserver-")]
    assert [c.name for c in cilium] == [f"clustermesh-apiserver-{m}" for m in versions.ORDER]
    for c in cilium:
        pin = pins[c.name]
        assert re.fullmatch(versions.VERSION_PATTERN, pin["version"]), pin["version"]
        assert versions.minor_of(pin["version"]) == c.name.rsplit("-", 1)[1], c.name
        v = pin["version"].removeprefix("v")
        assert c.outputs(pin) == [f"bin/clustermesh-apiserver-{v}", f"bin/cilium-crds-{v}"]


def test_the_cilium_components_are_keyed_apart_and_by_the_registrars_source() -> None:
    """Each minor is its own build: adding or moving one rebuilds no other; editing the registrar rebuilds them."""
    pins = toolchain.load_pins()
    by_name = {c.name: c for c in toolchain.COMPONENTS}
    a, b = by_name["clustermesh-apiserver-1.18"], by_name["clustermesh-apiserver-1.19"]
    ka = toolchain.component_key(a, pins[a.name], go="go1.26.8")
    assert ka != toolchain.component_key(b, pins[b.name], go="go1.26.8")
    moved = {**pins[b.name], "version": "v1.19.7"}
    assert toolchain.component_key(b, moved, go="go1.26.8") != toolchain.component_key(b, pins[b.name], go="go1.26.8")
    assert toolchain.component_key(a, pins[a.name], go="go1.26.8") == ka
    assert toolchain._cilium_wrapper in a.helpers and toolchain._published_replaces in a.helpers
    etcd = by_name["etcd"]
    assert etcd.helpers == ()  # the cilium helpers are in no other component's key


def test_status_has_a_line_per_clustermesh_apiserver_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toolchain, "go_version", lambda: "go1.26.8")
    monkeypatch.setattr(toolchain, "current_key", lambda: "k")
    env = {"MESH_TOOLCHAIN_DIR": str(tmp_path)}
    rows = {label: (state, detail) for label, state, detail in toolchain.status(env)}
    pins = toolchain.load_pins()
    for minor in ("1.18", "1.19", "1.20"):
        pin = pins[f"clustermesh-apiserver-{minor}"]
        v = pin["version"].removeprefix("v")
        assert rows[f"clustermesh-apiserver-{minor} {pin['version']}"] == (
            "missing", f"bin/clustermesh-apiserver-{v}, bin/cilium-crds-{v}")
    # Built (files and stamp in its component dir), not yet assembled: "built"; assembled: "present".
    comp = next(c for c in toolchain.COMPONENTS if c.name == "clustermesh-apiserver-1.19")
    pin = pins[comp.name]
    cdir = toolchain.component_dir(comp, pin, env)
    for rel in comp.outputs(pin):
        (cdir / rel).parent.mkdir(parents=True, exist_ok=True)
        (cdir / rel).write_text("binary")
    (cdir / ".built").mkdir()
    (cdir / ".built" / comp.name).write_text("{}")
    label = f"{comp.name} {pin['version']}"
    assert {r[0]: r[1] for r in toolchain.status(env)}[label] == "built"
    toolchain._assemble(comp, pin, cdir, tmp_path / "k")
    states = {r[0]: r[1] for r in toolchain.status(env)}
    assert states[label] == "present"
    assert states["clustermesh-apiserver-1.18 v1.18.3"] == "missing"
