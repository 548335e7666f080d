{{/* The chart's name, cut to the 63 characters of a DNS label. */}}
{{- define "berth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, which names every object of the chart. */}}
{{- define "berth.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "berth.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "berth.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "berth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "berth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "berth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "berth.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "berth.secretName" -}}
{{- default (include "berth.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "berth.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The engine's socket as Berth sees it, per docker.mode (empty for external). */}}
{{- define "berth.dockerHost" -}}
{{- if eq .Values.docker.mode "dind" }}unix:///var/run/dind/docker.sock
{{- else if eq .Values.docker.mode "hostSocket" }}unix:///var/run/docker.sock
{{- end }}
{{- end }}

{{/* The socket's group: docker.socketGroup, or in dind mode the group the sidecar is told. */}}
{{- define "berth.socketGroup" -}}
{{- if not (kindIs "invalid" .Values.docker.socketGroup) }}{{ .Values.docker.socketGroup | int64 }}
{{- else if eq .Values.docker.mode "dind" }}2375
{{- end }}
{{- end }}

{{/*
The uid Berth runs as: the non-root user, except with the node's socket and no group to
reach it by, where only root (without capabilities) can open a root-owned socket.
*/}}
{{- define "berth.runAsUser" -}}
{{- if and (eq .Values.docker.mode "hostSocket") (kindIs "invalid" .Values.docker.socketGroup) }}0
{{- else }}{{ .Values.securityContext.runAsUser | int64 }}
{{- end }}
{{- end }}

{{/*
public_url for main.yaml: publicUrl, else the first ingress host (https when a TLS entry
names it), else empty (main.yaml keeps its own).
*/}}
{{- define "berth.publicUrl" -}}
{{- if .Values.publicUrl }}{{ .Values.publicUrl }}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts }}
{{- $host := (first .Values.ingress.hosts).host }}
{{- $tls := false }}
{{- range .Values.ingress.tls }}{{ if has $host (default (list) .hosts) }}{{ $tls = true }}{{ end }}{{ end }}
{{- if $tls }}https://{{ $host }}{{ else }}http://{{ $host }}{{ end }}
{{- end }}
{{- end }}

{{/* Berth's containers (init-home, berth): no privileges of any kind. */}}
{{- define "berth.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}
