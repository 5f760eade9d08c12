{{/* The peer entries as a list of {name, address, port}: the 1.18 list form, or the 1.19+ map form. */}}
{{- define "mesh.peers" -}}
{{- $peers := list -}}
{{- $clusters := .Values.clustermesh.config.clusters -}}
{{- if kindIs "map" $clusters -}}
{{- range $name, $c := $clusters -}}
{{- $peers = append $peers (dict "name" $name "address" $c.address "port" $c.port) -}}
{{- end -}}
{{- else -}}
{{- range $c := $clusters -}}
{{- $peers = append $peers (dict "name" $c.name "address" $c.address "port" $c.port) -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "peers" $peers) -}}
{{- end -}}

{{/* The real chart's cilium.priorityClass: the value if set, else the default it is given (list . value default). */}}
{{- define "mesh.priorityClass" -}}
{{- $value := index . 1 -}}
{{- if $value -}}{{ $value }}{{- else -}}{{ index . 2 }}{{- end -}}
{{- end -}}

{{/* Whether the standalone cilium-envoy DaemonSet is rendered: as the real chart, on for new installations
     (envoy.enabled unset) unless L7 proxying is off. */}}
{{- define "mesh.envoyEnabled" -}}
{{- if not .Values.l7Proxy -}}false
{{- else if kindIs "invalid" .Values.envoy.enabled -}}true
{{- else -}}{{ .Values.envoy.enabled }}
{{- end -}}
{{- end -}}

{{/* A projected-volume source of the CA trust bundle (tls.caBundle), mounted at `path` (list . path): the pods
     that trust the bundle read ca.crt from it instead of a certificate Secret's ca.crt. */}}
{{- define "mesh.caBundleSource" -}}
{{- $b := (index . 0).Values.tls.caBundle -}}
- {{ $b.useSecret | ternary "secret" "configMap" }}:
    name: {{ $b.name }}
    items:
    - key: {{ $b.key }}
      path: {{ index . 1 }}
{{- end -}}
