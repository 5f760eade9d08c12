// pulumi-language-python: a small Pulumi language host for Python programs and Python policy packs.
//
// It stands in for upstream's github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3, which the Go
// module proxy available here does not serve. It speaks the same gRPC protocol (pulumirpc.LanguageRuntime), and
// does what upstream does for `pulumi preview/up/refresh/destroy` and `--policy-pack`: it runs the program with the
// `pulumi-language-python-exec` script found next to this executable, under the Python of the toolchain and
// virtualenv named in Pulumi.yaml (runtime.options), using the sdk/v3 module's python/toolchain package for the
// venv, pip and dependency handling. Code generation, packing and linking are not implemented (Unimplemented).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/contract"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
)

const (
	execScript = "pulumi-language-python-exec" // the shim that runs a program; expected next to this binary

	pulumiConfigVar           = "PULUMI_CONFIG"             // JSON object of the stack's config
	pulumiConfigSecretKeysVar = "PULUMI_CONFIG_SECRET_KEYS" //nolint:gosec // JSON array of the secret keys

	// The exec script exits with this code after it has shown the user an actionable error: the engine is then
	// told to bail without adding a message of its own.
	exitedAfterUserActionableMessage = 32
)

var minimumPythonVersion = semver.MustParse("3.7.0")

func main() {
	var tracing, givenExecutor string
	flag.StringVar(&tracing, "tracing", "", "Emit tracing to a Zipkin-compatible tracing endpoint")
	flag.StringVar(&givenExecutor, "use-executor", "", "Use the given program as the executor")
	// Flags that upstream still accepts and ignores (the options now come from Pulumi.yaml through each request).
	flag.String("virtualenv", "", "[obsolete] Virtual environment path to use")
	flag.String("root", "", "[obsolete] Project root path to use")
	flag.String("typechecker", "", "[obsolete] Use a typechecker to type check")
	flag.String("toolchain", "pip", "[obsolete] Select the package manager to use for dependency management.")
	flag.Parse()
	args := flag.Args()
	logging.InitLogging(false, 0, false)
	cmdutil.InitTracing("pulumi-language-python", "pulumi-language-python", tracing)

	if version.Version == "" {
		version.Version = sdkVersion()
	}

	pythonExec := givenExecutor
	if pythonExec == "" {
		self, err := os.Executable()
		if err != nil {
			cmdutil.Exit(fmt.Errorf("could not determine current executable: %w", err))
		}
		pythonExec = filepath.Join(filepath.Dir(self), execScript)
		if _, err = os.Stat(pythonExec); os.IsNotExist(err) {
			cmdutil.Exit(fmt.Errorf("missing executor %s: %w", pythonExec, err))
		}
	}
	logging.V(3).Infof("language host using executor `%s`", pythonExec)

	// The engine passes its own address as the last positional argument.
	var engineAddress string
	if len(args) > 0 {
		engineAddress = args[0]
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	cancelChannel := make(chan bool)
	go func() {
		<-ctx.Done()
		cancel()
		close(cancelChannel)
	}()
	if engineAddress != "" {
		// Stop serving once the engine is gone.
		if err := rpcutil.Healthcheck(ctx, engineAddress, 5*time.Minute, cancel); err != nil {
			cmdutil.Exit(fmt.Errorf("could not start health check host RPC server: %w", err))
		}
	}

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancelChannel,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, &pythonHost{exec: pythonExec, engineAddress: engineAddress,
				tracing: tracing})
			return nil
		},
		Options: rpcutil.OpenTracingServerInterceptorOptions(nil),
	})
	if err != nil {
		cmdutil.Exit(fmt.Errorf("could not start language host RPC server: %w", err))
	}
	fmt.Printf("%d\n", handle.Port) // the engine reads the port from the first line of stdout
	if err := <-handle.Done; err != nil {
		cmdutil.Exit(fmt.Errorf("language host RPC stopped serving: %w", err))
	}
}

// sdkVersion is the version of the sdk/v3 module this binary was built with (upstream sets version.Version with
// -ldflags at release time; the two are released together).
func sdkVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/pulumi/pulumi/sdk/v3" {
				return strings.TrimPrefix(dep.Version, "v")
			}
		}
	}
	return ""
}

// pythonHost implements pulumirpc.LanguageRuntimeServer. Methods it does not define answer codes.Unimplemented
// (GetRequiredPlugins, RuntimeOptionsPrompts, Template, Generate*, Pack, Link, Cancel), which the engine handles.
type pythonHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	exec          string
	engineAddress string
	tracing       string
}

// parseOptions reads Pulumi.yaml's (or PulumiPolicy.yaml's) runtime.options.
func parseOptions(info *pulumirpc.ProgramInfo) (toolchain.PythonOptions, error) {
	opts := toolchain.PythonOptions{Root: info.GetRootDirectory(), ProgramDir: info.GetProgramDirectory()}
	raw := info.GetOptions().AsMap()
	str := func(key string) (string, bool, error) {
		v, ok := raw[key]
		if !ok {
			return "", false, nil
		}
		s, isString := v.(string)
		if !isString {
			return "", true, fmt.Errorf("%s option must be a string", key)
		}
		return s, true, nil
	}
	if v, ok, err := str("virtualenv"); err != nil {
		return opts, err
	} else if ok {
		opts.Virtualenv = v
	}
	if v, ok, err := str("typechecker"); err != nil {
		return opts, err
	} else if ok {
		switch v {
		case "mypy":
			opts.Typechecker = toolchain.TypeCheckerMypy
		case "pyright":
			opts.Typechecker = toolchain.TypeCheckerPyright
		default:
			return opts, fmt.Errorf("unsupported typechecker option: %s", v)
		}
	}
	if v, ok, err := str("toolchain"); err != nil {
		return opts, err
	} else if ok {
		switch v {
		case "pip":
			opts.Toolchain = toolchain.Pip
		case "poetry":
			opts.Toolchain = toolchain.Poetry
		case "uv":
			opts.Toolchain = toolchain.Uv
		default:
			return opts, fmt.Errorf("unsupported toolchain option: %s", v)
		}
	}
	return opts, nil
}

func (host *pythonHost) Handshake(ctx context.Context,
	req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	host.engineAddress = req.EngineAddress
	hctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	if err := rpcutil.Healthcheck(hctx, host.engineAddress, 5*time.Minute, cancel); err != nil {
		cmdutil.Exit(fmt.Errorf("could not start health check host RPC server: %w", err))
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (host *pythonHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

// engineWriters returns writers that send what is written to them to the engine as ephemeral log messages
// (used for the output of creating a missing virtualenv).
func (host *pythonHost) engineWriters(ctx context.Context) (io.Writer, io.Writer, error) {
	conn, err := grpc.NewClient(host.engineAddress,
		grpc.WithTransportCredentials(insecure.NewCredentials()), rpcutil.GrpcChannelOptions())
	if err != nil {
		return nil, nil, fmt.Errorf("language host could not make connection to engine: %w", err)
	}
	client := pulumirpc.NewEngineClient(conn)
	stream := rand.Int31() //nolint:gosec
	return &logWriter{ctx, client, stream, pulumirpc.LogSeverity_INFO},
		&logWriter{ctx, client, stream, pulumirpc.LogSeverity_ERROR}, nil
}

type logWriter struct {
	ctx      context.Context
	engine   pulumirpc.EngineClient
	streamID int32
	severity pulumirpc.LogSeverity
}

func (w *logWriter) Write(p []byte) (int, error) {
	_, err := w.engine.Log(w.ctx, &pulumirpc.LogRequest{
		Message: strings.ToValidUTF8(string(p), "\uFFFD"), Ephemeral: true, StreamId: w.streamID, Severity: w.severity,
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// GetRequiredPackages reports the resource plugins of the Pulumi packages installed in the program's environment,
// creating the virtualenv first if it is missing (as upstream does).
func (host *pythonHost) GetRequiredPackages(ctx context.Context,
	req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	opts, err := parseOptions(req.Info)
	if err != nil {
		return nil, err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return nil, err
	}
	stdout, stderr, err := host.engineWriters(ctx)
	if err != nil {
		return nil, err
	}
	if err := tc.EnsureVenv(ctx, req.Info.ProgramDirectory, false, true, stdout, stderr); err != nil {
		return nil, err
	}
	validateVersion(ctx, tc)

	pkgs, err := pulumiPackages(ctx, tc)
	if err != nil {
		return nil, err
	}
	deps := []*pulumirpc.PackageDependency{}
	for _, pkg := range pkgs {
		dep, err := packageDependency(pkg)
		if err != nil {
			return nil, err
		}
		if dep != nil {
			deps = append(deps, dep)
		}
	}
	return &pulumirpc.GetRequiredPackagesResponse{Packages: deps}, nil
}

// Packages that are known to have no plugin, though they do not say so with a pulumi-plugin.json.
var packagesWithoutPlugins = map[string]bool{"pulumi-policy": true, "pulumi-esc-sdk": true}

type pythonPackage struct {
	Name     string // normalized (PEP 503: lower case, runs of "-_." as "-")
	Version  string
	Location string // the site-packages directory it is installed in
	plugin   *plugin.PulumiPluginJSON
}

// The site-packages directory of every installed distribution, by normalized name.
const locateScript = `import importlib.metadata as m, json, re
out = {}
for d in m.distributions():
    name = d.metadata["Name"]
    if name:
        out.setdefault(re.sub(r"[-_.]+", "-", name).lower(), str(d.locate_file("")))
print(json.dumps(out))`

// pulumiPackages lists the installed packages (the toolchain's transitive list, like upstream) that are Pulumi
// packages: those that ship a pulumi-plugin.json, and those whose name starts with "pulumi-".
func pulumiPackages(ctx context.Context, tc toolchain.Toolchain) ([]pythonPackage, error) {
	listed, err := tc.ListPackages(ctx, true)
	if err != nil {
		return nil, err
	}
	cmd, err := tc.Command(ctx, "-c", locateScript)
	if err != nil {
		return nil, err
	}
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("locating installed python packages: %w", err)
	}
	locations := map[string]string{}
	if err := json.Unmarshal(out, &locations); err != nil {
		return nil, fmt.Errorf("parsing installed python package locations: %w", err)
	}

	var result []pythonPackage
	for _, dep := range listed {
		pkg := pythonPackage{Name: dep.Name, Version: dep.Version, Location: locations[dep.Name]}
		if pkg.Location != "" {
			// By convention the module of package "pulumi-aws" is "pulumi_aws".
			path := filepath.Join(pkg.Location, strings.ReplaceAll(pkg.Name, "-", "_"), "pulumi-plugin.json")
			p, err := plugin.LoadPulumiPluginJSON(path)
			if err != nil && !os.IsNotExist(err) {
				return nil, err
			}
			pkg.plugin = p
		}
		if pkg.plugin == nil && !strings.HasPrefix(pkg.Name, "pulumi-") {
			continue
		}
		if packagesWithoutPlugins[pkg.Name] {
			continue
		}
		result = append(result, pkg)
	}
	logging.V(5).Infof("GetRequiredPackages: Pulumi packages: %#v", result)
	return result, nil
}

// packageDependency is the plugin of a Pulumi package: as its pulumi-plugin.json says, else named after the
// package and versioned like it. nil if it has none ("resource": false) or its version cannot be translated.
func packageDependency(pkg pythonPackage) (*pulumirpc.PackageDependency, error) {
	dep := &pulumirpc.PackageDependency{Kind: "resource"}
	param := func(p *plugin.PulumiParameterizationJSON) *pulumirpc.PackageParameterization {
		if p == nil {
			return nil
		}
		return &pulumirpc.PackageParameterization{Name: p.Name, Version: p.Version, Value: p.Value}
	}
	if p := pkg.plugin; p != nil {
		if !p.Resource {
			return nil, nil
		}
		dep.Name, dep.Version, dep.Server = p.Name, p.Version, p.Server
		dep.Parameterization, dep.Extension = param(p.Parameterization), param(p.ExtensionParameterization)
	}
	if dep.Name == "" {
		dep.Name = strings.TrimPrefix(pkg.Name, "pulumi-")
	}
	if dep.Version == "" {
		v, err := pluginVersion(pkg.Version)
		if err != nil {
			logging.V(5).Infof("GetRequiredPackages: no plugin version for %s %s: %v", pkg.Name, pkg.Version, err)
			return nil, nil
		}
		dep.Version = v
	}
	if !strings.HasPrefix(dep.Version, "v") {
		dep.Version = "v" + dep.Version
	}
	return dep, nil
}

var pep440 = regexp.MustCompile(`^(\d+(?:\.\d+)*)(?:(a|b|rc)(\d*))?(?:\.post(\d*))?(?:\.dev(\d*))?$`)

// pluginVersion translates a PEP 440 package version into the plugin's semver, as upstream does: at least three
// release segments ("1.0" -> "1.0.0"); a1/b1/rc1 -> "-alpha.1"/"-beta.1"/"-rc.1"; ".post1" -> "+post1";
// ".dev1" -> "+dev1" (or "...post1dev1"). Epochs and local versions are not supported.
func pluginVersion(v string) (string, error) {
	m := pep440.FindStringSubmatch(v)
	if m == nil {
		return "", fmt.Errorf("unsupported python package version %q", v)
	}
	segments := strings.Split(m[1], ".")
	for len(segments) < 3 {
		segments = append(segments, "0")
	}
	result := strings.Join(segments, ".")
	switch m[2] {
	case "a":
		result += "-alpha." + m[3]
	case "b":
		result += "-beta." + m[3]
	case "rc":
		result += "-rc." + m[3]
	}
	postOrDev := strings.Contains(v, ".post")
	if postOrDev {
		result += "+post" + m[4]
	}
	if strings.Contains(v, ".dev") {
		if !postOrDev {
			result += "+"
		}
		result += "dev" + m[5]
	}
	return result, nil
}

// validateVersion warns (on stderr, which the engine shows) if the Python is older than Pulumi supports.
func validateVersion(ctx context.Context, tc toolchain.Toolchain) {
	cmd, err := tc.Command(ctx, "--version")
	if err != nil {
		fmt.Fprintf(os.Stderr, "Failed to create python version command: %s\n", err)
		return
	}
	out, err := cmd.Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "Failed to resolve python version command: %s\n", err)
		return
	}
	v := strings.TrimSpace(strings.TrimPrefix(string(out), "Python "))
	v = regexp.MustCompile(`-?rc\d+$`).ReplaceAllString(v, "")
	parsed, err := semver.Parse(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Failed to parse python version: '%s'\n", v)
		return
	}
	if parsed.LT(minimumPythonVersion) {
		fmt.Fprintf(os.Stderr, "Pulumi does not support Python %s. Please upgrade to at least %s\n",
			parsed, minimumPythonVersion)
	}
}

// Run runs the program: `<venv python> pulumi-language-python-exec --monitor ... <entry point> <args>`, with the
// stack's config in PULUMI_CONFIG and its secret keys in PULUMI_CONFIG_SECRET_KEYS.
func (host *pythonHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	if host.engineAddress == "" {
		return nil, errors.New("when debugging or running explicitly, must call Handshake before Run")
	}
	if req.GetAttachDebugger() {
		return &pulumirpc.RunResponse{Error: "this language host does not support attaching a debugger"}, nil
	}
	opts, err := parseOptions(req.Info)
	if err != nil {
		return nil, err
	}

	args := append([]string{host.exec}, host.execArguments(req)...)
	config, err := json.Marshal(req.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("failed to serialize configuration: %w", err)
	}
	secretKeys := []byte("[]")
	if keys := req.GetConfigSecretKeys(); keys != nil {
		if secretKeys, err = json.Marshal(keys); err != nil {
			return nil, fmt.Errorf("failed to serialize configuration secret keys: %w", err)
		}
	}
	logging.V(5).Infoln("Language host launching process: ", strings.Join(args, " "))

	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return nil, err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return nil, err
	}
	cmd, err := tc.Command(ctx, args...)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	if req.GetConfig() != nil {
		env = append(env, pulumiConfigVar+"="+string(config))
	}
	cmd.Env = append(env, pulumiConfigSecretKeysVar+"="+string(secretKeys))

	if err := typecheck(ctx, tc, opts); err != nil {
		return nil, err
	}

	if err := cmd.Run(); err != nil {
		// Make sure whatever the program wrote reaches the engine before the error does.
		contract.IgnoreError(os.Stdout.Sync())
		contract.IgnoreError(os.Stderr.Sync())
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			status, ok := exitErr.Sys().(syscall.WaitStatus)
			switch {
			case !ok || status.ExitStatus() == 0:
				err = fmt.Errorf("program exited unexpectedly: %w", exitErr)
			case status.ExitStatus() == exitedAfterUserActionableMessage:
				return &pulumirpc.RunResponse{Bail: true}, nil
			default:
				err = fmt.Errorf("program exited with non-zero exit code: %d", status.ExitStatus())
			}
		} else {
			err = fmt.Errorf("problem executing program (could not run language executor): %w", err)
		}
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// execArguments are the exec script's arguments (see its argparse definition), then the entry point and its args.
func (host *pythonHost) execArguments(req *pulumirpc.RunRequest) []string {
	var args []string
	add := func(k, v string) {
		if v != "" {
			args = append(args, "--"+k, v)
		}
	}
	add("monitor", req.GetMonitorAddress())
	add("engine", host.engineAddress)
	add("project", req.GetProject())
	add("root_directory", req.GetInfo().GetRootDirectory())
	add("stack", req.GetStack())
	add("pwd", req.GetPwd())
	add("dry_run", strconv.FormatBool(req.GetDryRun()))
	add("parallel", strconv.Itoa(int(req.GetParallel())))
	add("tracing", host.tracing)
	add("organization", req.GetOrganization())
	// The engine always names an entry point, "." for the program directory (its __main__.py).
	args = append(args, req.GetInfo().GetEntryPoint())
	return append(args, req.GetArgs()...)
}

// typecheck runs mypy or pyright over the program first, if runtime.options.typechecker asks for it.
func typecheck(ctx context.Context, tc toolchain.Toolchain, opts toolchain.PythonOptions) error {
	var name string
	switch opts.Typechecker {
	case toolchain.TypeCheckerMypy:
		name = "mypy"
	case toolchain.TypeCheckerPyright:
		name = "pyright"
	default:
		return nil
	}
	args := []string{"-m", name}
	if name == "mypy" {
		venv, err := tc.VirtualEnvPath(ctx)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(opts.ProgramDir, venv)
		if err != nil {
			return err
		}
		args = append(args, "--exclude", rel)
	}
	cmd, err := tc.Command(ctx, append(args, opts.ProgramDir)...)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr, cmd.Dir = os.Stdout, os.Stderr, opts.ProgramDir
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s failed: %w", name, err)
	}
	return nil
}

// InstallDependencies is `pulumi install`: the toolchain's InstallDependencies, for pip `python -m venv <venv>` (also
// over an existing one), `pip install --upgrade pip setuptools wheel`, `pip install -r requirements.txt`, with
// the output streamed back.
func (host *pythonHost) InstallDependencies(req *pulumirpc.InstallDependenciesRequest,
	server pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	opts, err := parseOptions(req.Info)
	if err != nil {
		return err
	}
	// Plugins (policy packs) never run in the ambient Python: default their virtualenv to "venv".
	if req.IsPlugin && opts.Toolchain == toolchain.Pip && opts.Virtualenv == "" {
		opts.Virtualenv = "venv"
	}
	closer, stdout, stderr, err := rpcutil.MakeInstallDependenciesStreams(server, req.IsTerminal)
	if err != nil {
		return err
	}
	defer closer.Close()

	fmt.Fprint(stdout, "Installing dependencies...\n\n")
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return err
	}
	if err := tc.InstallDependencies(server.Context(), req.Info.ProgramDirectory, req.UseLanguageVersionTools,
		true, stdout, stderr); err != nil {
		return err
	}
	fmt.Fprint(stdout, "Finished installing dependencies\n\n")
	return closer.Close()
}

func (host *pythonHost) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	opts := toolchain.PythonOptions{Toolchain: toolchain.Pip}
	if req.GetInfo() != nil {
		var err error
		if opts, err = parseOptions(req.Info); err != nil {
			return nil, err
		}
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return nil, err
	}
	info, err := tc.About(ctx)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.AboutResponse{Executable: info.PythonExecutable, Version: info.PythonVersion.String()}, nil
}

func (host *pythonHost) GetProgramDependencies(ctx context.Context,
	req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	opts, err := parseOptions(req.Info)
	if err != nil {
		return nil, err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return nil, err
	}
	pkgs, err := tc.ListPackages(ctx, req.TransitiveDependencies)
	if err != nil {
		return nil, fmt.Errorf("failed to get python dependencies: %w", err)
	}
	deps := make([]*pulumirpc.DependencyInfo, len(pkgs))
	for i, p := range pkgs {
		deps[i] = &pulumirpc.DependencyInfo{Name: p.Name, Version: p.Version}
	}
	return &pulumirpc.GetProgramDependenciesResponse{Dependencies: deps}, nil
}

// RunPlugin runs a Python plugin; the engine uses it for Python policy packs (PulumiPolicy.yaml, runtime python),
// passing the engine address as the argument. A directory with __main__.py is run as `python <dir> <args>`;
// one without, if it is a buildable package, as `python -m pulumi.run.plugin <project name> <args>`.
func (host *pythonHost) RunPlugin(req *pulumirpc.RunPluginRequest,
	server pulumirpc.LanguageRuntime_RunPluginServer,
) error {
	logging.V(5).Infof("Attempting to run python plugin in %s with args %v", req.Info.ProgramDirectory, req.Args)
	ctx := server.Context()
	opts, err := parseOptions(req.Info)
	if err != nil {
		return err
	}
	// Plugins never run in the ambient Python: default their virtualenv to "venv".
	if opts.Toolchain == toolchain.Pip && opts.Virtualenv == "" {
		opts.Virtualenv = "venv"
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return err
	}

	hasMainPy := true
	if _, err := os.Stat(filepath.Join(opts.Root, "__main__.py")); os.IsNotExist(err) {
		hasMainPy = false
	} else if err != nil {
		return fmt.Errorf("looking for __main__.py: %w", err)
	}

	var cmd *exec.Cmd
	if !hasMainPy && hasModule(ctx, tc, "pulumi.run.plugin") {
		buildable, err := toolchain.IsBuildablePackage(opts.Root)
		if err != nil {
			return fmt.Errorf("checking if plugin is a buildable package: %w", err)
		}
		if !buildable {
			return errors.New("plugin is not runnable, it provides neither __main__.py nor a buildable pyproject.toml")
		}
		pyproject, err := toolchain.LoadPyproject(opts.Root)
		if err != nil {
			return fmt.Errorf("loading pyproject: %w", err)
		}
		args := append([]string{pyproject.Project.Name}, req.Args...) // buildable: it has a project name
		if cmd, err = tc.ModuleCommand(ctx, "pulumi.run.plugin", args...); err != nil {
			return err
		}
	} else if cmd, err = tc.Command(ctx, append([]string{req.Info.ProgramDirectory}, req.Args...)...); err != nil {
		return err
	}
	logging.V(5).Infof("RunPlugin: %s", cmd.String())

	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()
	cmd.Dir = req.Pwd
	cmd.Env = append(cmd.Env, req.Env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			return fmt.Errorf("problem executing plugin program (could not run language executor): %w", err)
		}
		if status, ok := exitErr.Sys().(syscall.WaitStatus); ok {
			return server.Send(&pulumirpc.RunPluginResponse{
				Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(status.ExitStatus())}, //nolint:gosec
			})
		}
		return fmt.Errorf("program exited unexpectedly: %w", exitErr)
	}
	return closer.Close()
}

// hasModule tells whether the toolchain's Python can import module; only a ModuleNotFoundError counts as no.
func hasModule(ctx context.Context, tc toolchain.Toolchain, module string) bool {
	cmd, err := tc.Command(ctx, "-c", "import "+module)
	if err != nil {
		return true
	}
	out, err := cmd.CombinedOutput()
	return err == nil || !strings.Contains(string(out), "ModuleNotFoundError")
}
