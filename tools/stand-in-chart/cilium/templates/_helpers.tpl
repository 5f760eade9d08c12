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

{{/* The certgen Job's spec of the real chart's `cronJob` method (templates/clustermesh-apiserver/tls-cronjob/
_job-spec.tpl): certgen's CA flags as arguments (it reuses cilium-ca), the four Secrets it issues in
CILIUM_CERTGEN_CONFIG. Read from cilium/cilium's template of a later version than 1.19.6 (its server CN is
clustermesh-apiserver.<ns>.svc and its extra IPs come from tls.auto.server); the server certificate here keeps the
1.18 helm method's CN and SANs and reads tls.server.extraIpAddresses, 1.19.6's documented key (values.yaml): that
1.19.6's job spec names them so is not verified. The certgen image is values.yaml certgen.image (1.18.3's default
tag; 1.19.6's is v0.4.6). tools.certgen is the stand-in that runs it. */}}
{{- define "mesh.certgenJobSpec" -}}
{{- $ns := .Release.Namespace -}}
{{- $validity := printf "%dh" (mul (int .Values.clustermesh.apiserver.tls.auto.certValidityDuration) 24) -}}
{{- $remote := ternary (printf "remote-%s" .Values.cluster.name) "remote" (eq .Values.clustermesh.apiserver.tls.authMode "cluster") -}}
{{- $config := list (dict "name" "clustermesh-apiserver-server-cert" "namespace" $ns "commonName" "clustermesh-apiserver.cilium.io"
      "hosts" (concat (list "clustermesh-apiserver.cilium.io" "*.mesh.cilium.io" (printf "clustermesh-apiserver.%s.svc" $ns))
                      .Values.clustermesh.apiserver.tls.server.extraDnsNames (list "127.0.0.1" "::1")
                      .Values.clustermesh.apiserver.tls.server.extraIpAddresses)
      "usage" (list "signing" "key encipherment" "server auth") "validity" $validity)
    (dict "name" "clustermesh-apiserver-admin-cert" "namespace" $ns "commonName" (printf "admin-%s" .Values.cluster.name)
      "usage" (list "signing" "key encipherment" "client auth") "validity" $validity)
    (dict "name" "clustermesh-apiserver-remote-cert" "namespace" $ns "commonName" $remote
      "usage" (list "signing" "key encipherment" "client auth") "validity" $validity) -}}
{{- if .Values.clustermesh.apiserver.kvstoremesh.enabled -}}
{{- $config = append $config (dict "name" "clustermesh-apiserver-local-cert" "namespace" $ns
      "commonName" (printf "local-%s" .Values.cluster.name)
      "usage" (list "signing" "key encipherment" "client auth") "validity" $validity) -}}
{{- end -}}
template:
  metadata:
    labels:
      k8s-app: clustermesh-apiserver-generate-certs
  spec:
    securityContext:
      seccompProfile:
        type: RuntimeDefault
    containers:
    - name: certgen
      image: {{ printf "%s:%s" .Values.certgen.image.repository .Values.certgen.image.tag | quote }}
      imagePullPolicy: IfNotPresent
      securityContext:
        capabilities:
          drop:
          - ALL
        allowPrivilegeEscalation: false
      command:
      - /usr/bin/cilium-certgen
      args:
      - --ca-generate={{ .Values.certgen.generateCA }}
      - --ca-reuse-secret
      - --ca-secret-namespace={{ $ns }}
      - --ca-secret-name=cilium-ca
      - --ca-common-name=Cilium CA
      env:
      - name: CILIUM_CERTGEN_CONFIG
        value: {{ dict "certs" $config | toYaml | quote }}
    hostNetwork: false
    serviceAccountName: clustermesh-apiserver-generate-certs
    automountServiceAccountToken: true
    restartPolicy: OnFailure
{{- end -}}
