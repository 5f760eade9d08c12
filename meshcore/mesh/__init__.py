"""One mesh: a release's inputs, the stack-outputs record, lifecycle rules, kubeconfigs, plugins, the chart source."""
