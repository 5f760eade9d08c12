// cilium-crds registers Cilium's CustomResourceDefinitions in an API server, as cilium-operator does
// when it starts, through the cilium module's own code (pkg/k8s/apis/cilium.io/client): the CRDs are
// embedded in its Go packages, at the schema of that Cilium version. The toolchain builds it once per
// chart minor, in the same wrapper module as that version's clustermesh-apiserver.
//
//	cilium-crds-1.18.3 --kubeconfig DIR/kubeconfig --context cls-a   # create or update every CRD, wait until established
//	cilium-crds-1.18.3 --list                                        # the CRDs it registers (no API server needed)
//
// The operator registers only the CRDs its options enable (CiliumNetworkPolicy with
// enable-cilium-network-policy, ...). Here every such option this version has is switched on, so
// that every CRD it knows is registered; it fails if one it knows stays off (a new option upstream).
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sort"
	"strings"

	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/client-go/tools/clientcmd"

	operatorOption "github.com/cilium/cilium/operator/option"
	k8sconst "github.com/cilium/cilium/pkg/k8s/apis/cilium.io"
	"github.com/cilium/cilium/pkg/k8s/apis/cilium.io/client"
	"github.com/cilium/cilium/pkg/k8s/synced"
	"github.com/cilium/cilium/pkg/option"
	"github.com/cilium/cilium/pkg/version"
)

// gates are the options (of the agent's and the operator's config) that pkg/k8s/synced reads to
// decide which CRDs are registered, across 1.18-1.20; those a version lacks are skipped.
var gates = []string{
	"EnableCiliumNodeCRD", "EnableCiliumEndpointSlice", "EnableCiliumNetworkPolicy",
	"EnableCiliumClusterwideNetworkPolicy", "EnableEgressGateway", "EnableLocalRedirectPolicy",
	"EnableEnvoyConfig", "EnableBGPControlPlane", "EnableDatapathPlugins", "EnableGatewayAPI",
}

func enableAll() {
	for _, cfg := range []any{option.Config, operatorOption.Config} {
		v := reflect.ValueOf(cfg).Elem()
		for _, name := range gates {
			if f := v.FieldByName(name); f.IsValid() && f.Kind() == reflect.Bool && f.CanSet() {
				f.SetBool(true)
			}
		}
	}
	option.Config.DisableCiliumEndpointCRD = false
}

// registered is the CRDs (full names) CreateCustomResourceDefinitions registers with the options
// as they are, and known the ones this version has that it leaves out.
func registered() (names, left []string) {
	known := client.CustomResourceDefinitionList()
	on := map[string]bool{}
	for _, r := range synced.AllCiliumCRDResourceNames() {
		on[r] = true
		if crd, ok := known[r]; ok {
			names = append(names, crd.FullName)
		}
	}
	for r, crd := range known {
		if !on[r] {
			left = append(left, crd.FullName)
		}
	}
	sort.Strings(names)
	sort.Strings(left)
	return names, left
}

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file (default $KUBECONFIG)")
	kubeContext := flag.String("context", "", "kubeconfig context (default: its current context)")
	list := flag.Bool("list", false, "print the CRDs this version registers, and exit")
	showVersion := flag.Bool("version", false, "print the Cilium version and CRD schema version, and exit")
	flag.Parse()

	if *showVersion {
		fmt.Printf("Cilium CRDs: %s (schema %s)\n", version.Version, k8sconst.CustomResourceDefinitionSchemaVersion)
		return
	}
	enableAll()
	names, left := registered()
	if len(left) > 0 {
		fmt.Fprintf(os.Stderr, "error: this Cilium version has CRDs no known option enables: %s\n", strings.Join(left, ", "))
		os.Exit(2)
	}
	if *list {
		fmt.Println(strings.Join(names, "\n"))
		return
	}

	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: *kubeconfig}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		rules, &clientcmd.ConfigOverrides{CurrentContext: *kubeContext}).ClientConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: kubeconfig: %v\n", err)
		os.Exit(1)
	}
	clientset, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := client.CreateCustomResourceDefinitions(logger, clientset); err != nil {
		fmt.Fprintf(os.Stderr, "error: registering Cilium's CRDs at %s: %v\n", cfg.Host, err)
		os.Exit(1)
	}
	fmt.Printf("registered %d CRDs (schema %s) at %s: %s\n", len(names),
		k8sconst.CustomResourceDefinitionSchemaVersion, cfg.Host, strings.Join(names, ", "))
}
