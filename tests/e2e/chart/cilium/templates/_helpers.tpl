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
