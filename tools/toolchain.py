"""The real Pulumi engine, providers and Kubernetes API servers, built from their Go modules.

    python -m tools.toolchain build     # build what is missing (progress per component); no-op when complete
    python -m tools.toolchain path      # the bin directory (pulumi, its Python host, kube-apiserver, etcd)
    python -m tools.toolchain status    # each component: present, missing, or why it cannot be built here
    python -m tools.toolchain env       # shell lines that put the toolchain first (eval "$(...)")

Versions are pinned in ``toolchain/pins.toml``. Everything is built with the ordinary ``go``
client from the module proxy, in throwaway wrapper modules (the upstream mains' ``replace``
directives are not honoured by ``go install``), and installed outside the checkout, under
``$MESH_TOOLCHAIN_DIR`` (default ``~/.cache/tke-cilium-mesh/toolchain``):

- ``components/<name>-<version>-<key>/``: one built component. Its key hashes its pin, its own
  sources in ``toolchain/``, the Go version and the code of its recipe (nothing else here), so
  a change to one recipe, to progress output or a new component rebuilds nothing else.
- ``<key>/``: the assembled toolchain of this checkout's pins (hard links to the components):
  ``bin/`` holds ``pulumi``, ``pulumi-language-python`` (+ the SDK's
  ``pulumi-language-python-exec`` and ``pulumi-resource-pulumi-python`` scripts beside it, where
  the CLI looks for its bundled language host), ``kube-apiserver``, ``etcd``, ``helm`` (the client users install
  Cilium with by hand; the suite adopts such a mesh), and per Cilium chart
  minor ``clustermesh-apiserver-<version>`` and ``cilium-crds-<version>``; ``plugins/`` is laid
  out as a ``$PULUMI_HOME/plugins`` directory (``resource-kubernetes-v4.25.0/pulumi-resource-kubernetes``).

Every clone on the machine, and CI, reuses the same builds. A build in progress prints a line
at least once a minute (elapsed time, modules downloaded, the log's last line).

A component is installed only when its build succeeded (a stamp file is written last), so
an interrupted build is redone, never half-used. Builds hold a lock: two clones building at
once wait for each other. Build logs: ``$MESH_TOOLCHAIN_DIR/logs/``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from meshcore.chart import versions
from tools import ROOT, periodic

SOURCES = ROOT / "toolchain"
PINS_FILE = SOURCES / "pins.toml"
DEFAULT_DIR = Path("~/.cache/tke-cilium-mesh/toolchain")

GO_ENV = {"GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}


class ToolchainError(Exception):
    """A build step failed; the message names the component and the log."""


def load_pins(path: Path = PINS_FILE) -> dict[str, dict[str, str]]:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def go_version() -> str:
    try:
        out = subprocess.run(["go", "env", "GOVERSION"], check=True, capture_output=True, text=True,
                             env={**os.environ, **GO_ENV}).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as err:
        raise ToolchainError(f"go is needed to build the toolchain (Go 1.26 or newer): {err}") from None
    return out


def _sources_digest(h: hashlib._Hash, sources: Path) -> None:
    for path in sorted(p for p in sources.rglob("*") if p.is_file() and p.suffix != ".md"):
        h.update(str(path.relative_to(sources)).encode() + b"\0" + path.read_bytes() + b"\0")


def component_key(component: Component, pin: Mapping[str, str], go: str | None = None,
                  root: Path = ROOT) -> str:
    """What one built component depends on: its pin, its own sources (``source``), the Go version
    and the code of its recipe (its build function and the shared helpers), not the rest of this
    file: progress output or a new component rebuilds nothing that is already built."""
    h = hashlib.sha256()
    h.update((go or go_version()).encode() + b"\0")
    h.update(json.dumps(dict(pin), sort_keys=True).encode() + b"\0")
    if "source" in pin:
        _sources_digest(h, root / pin["source"])
    if component.build is not None:
        h.update(inspect.getsource(component.build).encode())
    for helper in component.helpers:
        h.update(inspect.getsource(helper).encode())
    for helper in RECIPE_HELPERS:
        h.update(inspect.getsource(helper).encode())
    h.update(json.dumps(GO_ENV, sort_keys=True).encode())
    return h.hexdigest()[:12]


def key(pins: Mapping[str, Mapping[str, str]], go: str | None = None, root: Path = ROOT) -> str:
    """The assembled toolchain (bin/ and plugins/ of every component) of these pins: its
    components' keys together."""
    go = go or go_version()
    parts = [f"{c.name}={component_key(c, pins[c.name], go, root)}" for c in COMPONENTS if c.build is not None]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


@functools.cache
def current_key() -> str:
    """This checkout's key, computed once per process (it runs `go env` and reads the sources)."""
    return key(load_pins())


def base_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get("MESH_TOOLCHAIN_DIR") or DEFAULT_DIR).expanduser()


def install_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return base_dir(environ) / current_key()


def component_dir(component: Component, pin: Mapping[str, str], environ: Mapping[str, str] = os.environ) -> Path:
    """Where one component is built, keyed by its name, version and component key: shared by
    every assembled toolchain that pins it alike."""
    version = pin.get("plugin_version") or pin.get("version") or pin.get("sdk_version", "")
    return base_dir(environ) / "components" / f"{component.name}-{version}-{component_key(component, pin)}"


def bin_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return install_dir(environ) / "bin"


def plugins_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return install_dir(environ) / "plugins"


# -- building -------------------------------------------------------------------------------


@dataclass
class Step:
    """Runs the commands of one component's build, logging them to one file."""

    name: str
    log: Path
    work: Path

    def run(self, *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
            capture: bool = False) -> str:
        full_env = {**os.environ, **GO_ENV, **(env or {})}
        with open(self.log, "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(args)}\n")
            log.flush()
            proc = subprocess.run(list(args), cwd=cwd or self.work, env=full_env, text=True,
                                  stdout=subprocess.PIPE if capture else log, stderr=log)
        if proc.returncode != 0:
            tail = "".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines(True)[-15:])
            raise ToolchainError(f"{self.name}: `{' '.join(args)}` failed (exit {proc.returncode}); "
                                 f"log {self.log}:\n{tail}")
        return proc.stdout or ""

    def module(self, module: str, version: str) -> dict[str, str]:
        """``go mod download -json`` of the module: its source ``Dir`` and ``GoMod`` file in the module cache."""
        return dict(json.loads(self.run("go", "mod", "download", "-json", f"{module}@{version}", capture=True)))

    def wrapper(self, requires: list[tuple[str, str]], replaces: list[tuple[str, str]] | None = None,
                godebug: list[str] | None = None) -> None:
        """A throwaway module that requires the pinned modules (and honours our replaces). The
        main module decides the runtime's GODEBUG defaults: ``godebug`` lines carry the upstream ones."""
        lines = ["module wrapper", "", "go 1.26", *(godebug or []), ""]
        lines += [f"require {m} {v}" for m, v in requires]
        lines += [f"replace {old} => {new}" for old, new in replaces or []]
        (self.work / "go.mod").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def build(self, package: str, out: Path, *, tags: str = "", ldflags: str = "", cwd: Path | None = None) -> None:
        # -s -w: no symbol table and DWARF (a third of the size; nobody debugs these binaries here).
        args = ["go", "build", "-trimpath", "-o", str(out), "-ldflags", f"-s -w {ldflags}".strip()]
        if tags:
            args += ["-tags", tags]
        self.run(*args, package, cwd=cwd)


def _blank_import(step: Step, package: str) -> None:
    """Make the wrapper import ``package`` so that ``go mod tidy`` keeps what it needs."""
    (step.work / "tools.go").write_text(f'//go:build tools\n\npackage wrapper\n\nimport _ "{package}"\n',
                                        encoding="utf-8")


def build_pulumi(pin: Mapping[str, str], step: Step, out: Path) -> None:
    sdk = "github.com/pulumi/pulumi/sdk/v3"
    step.wrapper([(pin["module"], pin["version"]), (sdk, pin["version"])])
    _blank_import(step, pin["package"])
    step.run("go", "mod", "tidy")
    step.build(pin["package"], out / "bin" / "pulumi", tags="osusergo,grpcnotrace",
               ldflags=f"-X {sdk}/go/common/version.Version={pin['version']}")


def build_python_host(pin: Mapping[str, str], step: Step, out: Path) -> None:
    # Built from a copy, so that nothing is written into the checkout.
    src = step.work / "src"
    shutil.copytree(ROOT / pin["source"], src)
    step.build(".", out / "bin" / "pulumi-language-python", cwd=src)
    sdk = Path(step.module(pin["sdk_module"], pin["sdk_version"])["Dir"])
    for script in ("python/cmd/pulumi-language-python-exec", "python/dist/pulumi-resource-pulumi-python"):
        target = out / "bin" / Path(script).name
        shutil.copyfile(sdk / script, target)
        target.chmod(0o755)


def build_kubernetes(pin: Mapping[str, str], step: Step, out: Path) -> None:
    step.wrapper([(pin["module"], pin["version"])])
    shutil.copyfile(ROOT / pin["source"] / "main.go", step.work / "main.go")
    cmd = Path(step.module(pin["module"], pin["version"])["Dir"]) / "cmd" / "pulumi-resource-kubernetes"
    schema = json.loads((cmd / "schema.json").read_text(encoding="utf-8"))
    schema["version"] = pin["plugin_version"]
    (step.work / "schema.json").write_text(json.dumps(schema), encoding="utf-8")
    shutil.copyfile(cmd / "terraform-mapping.json", step.work / "terraform-mapping.json")
    step.run("go", "mod", "tidy")
    plugin = out / "plugins" / f"resource-kubernetes-v{pin['plugin_version']}"
    plugin.mkdir(parents=True, exist_ok=True)
    step.build(".", plugin / "pulumi-resource-kubernetes",
               ldflags=f"-X {pin['module']}/pkg/version.Version={pin['plugin_version']}")


def build_helm(pin: Mapping[str, str], step: Step, out: Path) -> None:
    """The Helm client (``bin/helm``), stamped with its version as Helm's Makefile does (``helm version``)."""
    step.wrapper([(pin["module"], pin["version"])])
    _blank_import(step, pin["package"])
    step.run("go", "mod", "tidy")
    step.build(pin["package"], out / "bin" / "helm",
               ldflags=f"-X {pin['module']}/internal/version.version={pin['version']}")


def _staging_replaces(gomod: str, version: str) -> list[tuple[str, str]]:
    """kubernetes' go.mod points every staging module (k8s.io/api, ...) at ./staging; the
    published copies of the same release are k8s.io/<m> v0.<minor>.<patch>."""
    published = "v0." + version.removeprefix("v").split(".", 1)[1]
    replaces = []
    for line in gomod.splitlines():
        parts = line.strip().removeprefix("replace").split()
        if len(parts) == 3 and parts[1] == "=>" and parts[2].startswith("./staging/"):
            replaces.append((parts[0], f"{parts[0]} {published}"))
    return replaces


def build_kube_apiserver(pin: Mapping[str, str], step: Step, out: Path) -> None:
    gomod = Path(step.module(pin["module"], pin["version"])["GoMod"]).read_text(encoding="utf-8")
    godebug = [line.strip() for line in gomod.splitlines() if line.startswith("godebug ")]
    step.wrapper([(pin["module"], pin["version"])], _staging_replaces(gomod, pin["version"]), godebug)
    _blank_import(step, pin["package"])
    step.run("go", "mod", "tidy")
    major, minor = pin["version"].removeprefix("v").split(".")[:2]
    stamp = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        stamp += [f"-X {pkg}.gitVersion={pin['version']}", f"-X {pkg}.gitMajor={major}",
                  f"-X {pkg}.gitMinor={minor}", f"-X {pkg}.gitTreeState=clean"]
    step.build(pin["package"], out / "bin" / "kube-apiserver", ldflags=" ".join(stamp))


def build_etcd(pin: Mapping[str, str], step: Step, out: Path) -> None:
    step.wrapper([(pin["module"], pin["version"])])
    _blank_import(step, pin["package"])
    step.run("go", "mod", "tidy")
    step.build(pin["package"], out / "bin" / "etcd")


def _published_replaces(gomod: str) -> list[tuple[str, str]]:
    """The ``replace`` directives of a go.mod (one-line or in a block) as (old, new) for ``Step.wrapper``.
    Only replaces by another published module can be copied into a wrapper: one by a directory
    (``=> ./x``) points inside the upstream repository, which is not in its module zip."""
    replaces, local, block = [], [], False
    for raw in gomod.splitlines():
        line = raw.split("//", 1)[0].strip()
        if block and line == ")":
            block = False
            continue
        if line in ("replace (", "replace("):
            block = True
            continue
        if not (block or line.startswith("replace ")):
            continue
        old, sep, new = line.removeprefix("replace ").partition("=>")
        old, new = " ".join(old.split()), " ".join(new.split())
        if not sep or not old or not new:
            continue
        if len(new.split()) == 1:  # no version: a directory
            local.append(f"{old} => {new}")
        else:
            replaces.append((old, new))
    if local:
        raise ToolchainError(f"replace by a directory cannot be copied into a wrapper module: {'; '.join(local)}")
    return replaces


def _cilium_version_stamp(info: Mapping[str, object]) -> str:
    """``pkg/version.ciliumVersion`` as cilium's Makefile stamps it ("VERSION REVISION DATE"; pkg/version
    appends the Go version): ``version`` and ``clustermesh-apiserver version`` print it, and
    ``version.FromString`` parses it only with all three fields."""
    origin = info.get("Origin")
    revision = str(origin.get("Hash", ""))[:10] if isinstance(origin, dict) else ""
    return f"{str(info['Version']).removeprefix('v')} {revision or 'unknown'} {info['Time']}"


def _cilium_wrapper(gomod: str, extra: str = "") -> tuple[list[tuple[str, str]], list[str]]:
    """The wrapper's replaces (cilium's, then ``extra``: "old => new version" lines, which win) and
    its godebug line: the main module's go line sets the runtime's GODEBUG defaults, keep upstream's."""
    ours = _published_replaces("".join(f"replace {line}\n" for line in extra.splitlines()))
    replaces = [r for r in _published_replaces(gomod) if r[0] not in {old for old, _ in ours}] + ours
    go = next(line.split()[1] for line in gomod.splitlines() if line.startswith("go "))
    return replaces, [f"godebug default=go{'.'.join(go.split('.')[:2])}"]


def build_clustermesh_apiserver(pin: Mapping[str, str], step: Step, out: Path) -> None:
    """Cilium's clustermesh-apiserver (the clustermesh, kvstoremesh and etcdinit subcommands) and our
    CRD registrar (toolchain/ciliumcrds), both from one wrapper module that requires the cilium
    module at the pinned version with its replaces (and the pin's own ``replace`` lines, which win)."""
    mod = step.module(pin["module"], pin["version"])
    replaces, godebug = _cilium_wrapper(Path(mod["GoMod"]).read_text(encoding="utf-8"), pin.get("replace", ""))
    step.wrapper([(pin["module"], pin["version"])], replaces, godebug)
    # Our main in a directory of its own: the wrapper's root is package wrapper (tools.go).
    shutil.copytree(ROOT / pin["source"], step.work / "ciliumcrds")
    _blank_import(step, pin["package"])
    step.run("go", "mod", "tidy")
    info = json.loads(Path(mod["Info"]).read_text(encoding="utf-8"))
    stamp = f"-X '{pin['module']}/pkg/version.ciliumVersion={_cilium_version_stamp(info)}'"
    version = pin["version"].removeprefix("v")
    # osusergo: the tag cilium's Makefile.defs builds every binary with.
    step.build(pin["package"], out / "bin" / f"clustermesh-apiserver-{version}", tags="osusergo", ldflags=stamp)
    step.build("./ciliumcrds", out / "bin" / f"cilium-crds-{version}", tags="osusergo", ldflags=stamp)


def _cilium_outputs(pin: Mapping[str, str]) -> list[str]:
    version = pin["version"].removeprefix("v")
    return [f"bin/clustermesh-apiserver-{version}", f"bin/cilium-crds-{version}"]


def _cilium(minor: str) -> Component:
    """The clustermesh-apiserver of one chart minor: its own component (adding a minor rebuilds nothing)."""
    return Component(f"clustermesh-apiserver-{minor}", build_clustermesh_apiserver, _cilium_outputs,
                     helpers=(_published_replaces, _cilium_wrapper, _cilium_version_stamp))


@dataclass(frozen=True)
class Component:
    name: str
    build: Callable[[Mapping[str, str], Step, Path], None] | None
    outputs: Callable[[Mapping[str, str]], list[str]]
    """Paths (relative to the install dir) the component installs."""
    helpers: tuple[Callable[..., object], ...] = ()
    """Functions of this file its recipe calls besides RECIPE_HELPERS: in its key, not in the others'."""


CILIUM_MINORS: tuple[str, ...] = versions.ORDER
"""The chart minors the program supports: one clustermesh-apiserver each (pins.toml)."""

COMPONENTS = (
    Component("pulumi", build_pulumi, lambda p: ["bin/pulumi"]),
    Component("pulumi-language-python", build_python_host,
              lambda p: ["bin/pulumi-language-python", "bin/pulumi-language-python-exec",
                         "bin/pulumi-resource-pulumi-python"]),
    Component("pulumi-resource-kubernetes", build_kubernetes,
              lambda p: [f"plugins/resource-kubernetes-v{p['plugin_version']}/pulumi-resource-kubernetes"]),
    Component("pulumi-resource-tls", None, lambda p: []),
    Component("kube-apiserver", build_kube_apiserver, lambda p: ["bin/kube-apiserver"]),
    Component("etcd", build_etcd, lambda p: ["bin/etcd"]),
    Component("helm", build_helm, lambda p: ["bin/helm"]),
    *(_cilium(minor) for minor in CILIUM_MINORS),
)


RECIPE_HELPERS: tuple[Callable[..., object] | type, ...] = (Step, _blank_import, _staging_replaces)
"""Shared recipe code that every component's key includes."""


def _stamp(dest: Path, name: str) -> Path:
    return dest / ".built" / name


def _label(name: str, pin: Mapping[str, str]) -> str:
    return f"{name} {pin.get('plugin_version') or pin.get('version') or pin.get('sdk_version', '')}".strip()


def component_state(component: Component, pin: Mapping[str, str], dest: Path) -> str:
    if "unavailable" in pin:
        return "unavailable"
    if _stamp(dest, component.name).is_file() and all((dest / p).is_file() for p in component.outputs(pin)):
        return "present"
    return "missing"


@contextlib.contextmanager
def _locked(base: Path, name: str) -> Iterator[None]:
    base.mkdir(parents=True, exist_ok=True)
    with open(base / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def progress_line(label: str, elapsed: float, log: Path) -> str:
    """What a build in progress says: the elapsed time, the modules downloaded so far, the log's last line."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    downloaded = sum(1 for line in lines if line.startswith("go: downloading "))
    last = next((line.strip() for line in reversed(lines) if line.strip()), "(log empty)")
    return f"{label}: {int(elapsed) // 60}m{int(elapsed) % 60:02d}s, {downloaded} modules downloaded; {last[:160]}"


@contextlib.contextmanager
def _ticking(label: str, log: Path, out: TextIO, every: float) -> Iterator[None]:
    """Print a progress line every ``every`` seconds while the block runs."""
    started = time.monotonic()

    def tick() -> None:
        print(progress_line(label, time.monotonic() - started, log), file=out, flush=True)

    with periodic.every(every, tick):
        yield


def _build_component(comp: Component, pin: Mapping[str, str], cdir: Path, label: str, log: Path,
                     out: TextIO, every: float) -> None:
    log.write_text("", encoding="utf-8")
    print(f"{label}: building (log {log}) ...", file=out, flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"{comp.name}-", dir=cdir.parent) as work, \
            _ticking(label, log, out, every):
        staging = Path(work) / "out"
        (Path(work) / "w").mkdir()
        assert comp.build is not None
        comp.build(pin, Step(comp.name, log, Path(work) / "w"), staging)
        for rel in comp.outputs(pin):
            target = cdir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, target)
    _stamp(cdir, comp.name).parent.mkdir(parents=True, exist_ok=True)
    _stamp(cdir, comp.name).write_text(json.dumps(dict(pin), sort_keys=True), encoding="utf-8")
    size = sum((cdir / rel).stat().st_size for rel in comp.outputs(pin)) / 2**20
    print(f"{label}: built in {time.monotonic() - started:.0f} s ({size:.0f} MiB)", file=out, flush=True)


def _assemble(comp: Component, pin: Mapping[str, str], cdir: Path, dest: Path) -> None:
    """Link a built component's files into the assembled toolchain (hard links: the files are real
    files there, so a binary finds its neighbours where it is run from)."""
    for rel in [*comp.outputs(pin), str(_stamp(Path(), comp.name))]:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        try:
            os.link(cdir / rel, target)
        except OSError:
            shutil.copy2(cdir / rel, target)


def build(environ: Mapping[str, str] = os.environ, out: TextIO = sys.stderr, every: float = 60.0) -> Path:
    """Build every missing component (each in its own keyed directory, a progress line at least
    every ``every`` seconds) and assemble them; returns the install dir."""
    pins = load_pins()
    base, k = base_dir(environ), current_key()
    dest = base / k
    with _locked(base, k):
        todo = [c for c in COMPONENTS if c.build is not None]
        for i, comp in enumerate(todo, 1):
            pin = pins[comp.name]
            label = f"[{i}/{len(todo)}] {_label(comp.name, pin)}"
            cdir = component_dir(comp, pin, environ)
            if component_state(comp, pin, cdir) == "present":
                print(f"{label}: present ({cdir})", file=out, flush=True)
            else:
                cdir.mkdir(parents=True, exist_ok=True)
                logs = base / "logs"
                logs.mkdir(parents=True, exist_ok=True)
                _build_component(comp, pin, cdir, label, logs / f"{cdir.name}.log", out, every)
            if component_state(comp, pin, dest) != "present":
                _assemble(comp, pin, cdir, dest)
        for comp in COMPONENTS:
            if comp.build is None:
                pin = pins[comp.name]
                print(f"{_label(comp.name, pin)}: not built: {pin['unavailable']}", file=out, flush=True)
    return dest


def status(environ: Mapping[str, str] = os.environ) -> list[tuple[str, str, str]]:
    """(component and version, state, detail) for every pinned component."""
    pins = load_pins()
    dest = install_dir(environ)
    rows = []
    for comp in COMPONENTS:
        pin = pins[comp.name]
        state = component_state(comp, pin, dest)
        if state == "missing" and component_state(comp, pin, component_dir(comp, pin, environ)) == "present":
            state = "built"  # built, not yet assembled: `make toolchain` links it in seconds
        detail = pin["unavailable"] if state == "unavailable" else ", ".join(comp.outputs(pin))
        rows.append((_label(comp.name, pin), state, detail))
    return rows


def require(environ: Mapping[str, str] = os.environ) -> Path:
    """The install dir, or ToolchainError naming what is missing and the command that builds it."""
    missing = [row[0] for row in status(environ) if row[1] in ("missing", "built")]
    if missing:
        raise ToolchainError(f"the toolchain in {install_dir(environ)} lacks {', '.join(missing)}: "
                             "run `make toolchain` (python -m tools.toolchain build)")
    return install_dir(environ)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.toolchain", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "path", "status", "env"])
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build()
        elif args.command == "path":
            print(bin_dir())
        elif args.command == "status":
            rows = status()
            for label, state, detail in rows:
                print(f"{label:40} {state:12} {detail}")
            return 0 if all(state in ("present", "unavailable") for _, state, _ in rows) else 1
        else:
            print(f'export PATH="{bin_dir()}:$PATH"')
            print("export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true")
            print(f"# provider plugins: {plugins_dir()} (see README, Real engine)")
    except ToolchainError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
