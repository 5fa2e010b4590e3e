{{/*
Chart name, truncated to a DNS label.
*/}}
{{- define "mlreg-server.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name of the release's resources: RELEASE-CHART, or RELEASE alone when it
already contains the chart name. Truncated to 63 characters (DNS label).
*/}}
{{- define "mlreg-server.fullname" -}}
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

{{/*
CHART-VERSION for the helm.sh/chart label.
*/}}
{{- define "mlreg-server.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource.
*/}}
{{- define "mlreg-server.labels" -}}
helm.sh/chart: {{ include "mlreg-server.chart" . }}
{{ include "mlreg-server.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mlreg
{{- end }}

{{/*
Labels that identify the release's resources (immutable parts of selectors).
*/}}
{{- define "mlreg-server.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mlreg-server.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Selector of the server pods: the component label keeps the migration Job's and the helm test's
pods, which carry the release's labels too, out of the Service's endpoints.
*/}}
{{- define "mlreg-server.serverSelectorLabels" -}}
{{ include "mlreg-server.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/*
Name of the ServiceAccount the pods run as.
*/}}
{{- define "mlreg-server.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mlreg-server.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The server image: REPOSITORY@DIGEST when a digest is set, else REPOSITORY:TAG (the chart's
appVersion when no tag is given).
*/}}
{{- define "mlreg-server.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (toString (default .Chart.AppVersion .Values.image.tag)) }}
{{- end }}
{{- end }}

{{/*
The Secret the chart makes for what was given as values (the database URI, S3 keys, the admin
password).
*/}}
{{- define "mlreg-server.secretName" -}}
{{- printf "%s-secrets" (include "mlreg-server.fullname" .) }}
{{- end }}

{{/* The Secret and key of the database URI. */}}
{{- define "mlreg-server.databaseSecret" -}}
{{- default (include "mlreg-server.secretName" .) .Values.database.existingSecret }}
{{- end }}

{{/* The Secret of the S3 keys (envFrom), or nothing: the pod's own identity. */}}
{{- define "mlreg-server.s3Secret" -}}
{{- if .Values.artifacts.s3.existingSecret }}
{{- .Values.artifacts.s3.existingSecret }}
{{- else if .Values.artifacts.s3.accessKeyId }}
{{- include "mlreg-server.secretName" . }}
{{- end }}
{{- end }}

{{/* The Secret of the first admin's password, or nothing. */}}
{{- define "mlreg-server.adminSecret" -}}
{{- if .Values.auth.enabled }}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecret }}
{{- else if .Values.auth.adminPassword }}
{{- include "mlreg-server.secretName" . }}
{{- end }}
{{- end }}
{{- end }}

{{/* The Secret of the web UI's signing key: an existing one, or the chart's. */}}
{{- define "mlreg-server.uiSecret" -}}
{{- default (include "mlreg-server.secretName" .) .Values.ui.existingSecret }}
{{- end }}

{{/*
The web UI's signing key for the chart's Secret: the value given, else the one the installed
release's Secret holds (upgrades keep everyone signed in), else a new random one.
*/}}
{{- define "mlreg-server.uiSecretKey" -}}
{{- $old := lookup "v1" "Secret" .Release.Namespace (include "mlreg-server.secretName" .) }}
{{- $kept := "" }}
{{- if and $old $old.data }}
{{- $kept = index $old.data .Values.ui.secretKeyKey | default "" | b64dec }}
{{- end }}
{{- .Values.ui.secretKey | default $kept | default (randAlphaNum 48) }}
{{- end }}

{{/* Whether the chart makes its Secret. */}}
{{- define "mlreg-server.makesSecret" -}}
{{- if or (not .Values.ui.existingSecret) (and .Values.database.uri (not .Values.database.existingSecret)) (and .Values.artifacts.s3.accessKeyId (not .Values.artifacts.s3.existingSecret)) (and .Values.auth.enabled .Values.auth.adminPassword (not .Values.auth.existingSecret)) }}true{{ end }}
{{- end }}

{{/* Artifacts on a PersistentVolumeClaim (no artifacts.root). */}}
{{- define "mlreg-server.localArtifacts" -}}
{{- if not .Values.artifacts.root }}true{{ end }}
{{- end }}

{{- define "mlreg-server.claimName" -}}
{{- default (printf "%s-artifacts" (include "mlreg-server.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/*
Host names the server answers to (MLREG_ALLOWED_HOSTS): the Service's DNS names, the Ingress
hosts and server.allowedHosts. Addresses (probes, scrapes) are always allowed.
*/}}
{{- define "mlreg-server.allowedHosts" -}}
{{- $fullname := include "mlreg-server.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- $hosts := list $fullname (printf "%s.%s" $fullname $ns) (printf "%s.%s.svc" $fullname $ns) (printf "%s.%s.svc.cluster.local" $fullname $ns) }}
{{- if .Values.ingress.enabled }}
{{- range .Values.ingress.hosts }}
{{- $hosts = append $hosts .host }}
{{- end }}
{{- end }}
{{- $hosts = concat $hosts .Values.server.allowedHosts }}
{{- join "," (uniq $hosts) }}
{{- end }}

{{/*
Seconds from "terminating" to SIGKILL: the preStop pause, then gunicorn's graceful shutdown
(which rounds MLREG_GRACEFUL_TIMEOUT up), then a margin.
*/}}
{{- define "mlreg-server.terminationGracePeriodSeconds" -}}
{{- add .Values.shutdown.preStopSleepSeconds (.Values.server.gracefulTimeout | ceil | int) .Values.shutdown.extraGraceSeconds }}
{{- end }}

{{/*
A number as an environment variable value: whole numbers without Go's exponent notation
(values files give Helm float64s, which print 1e+06).
*/}}
{{- define "mlreg-server.number" -}}
{{- if eq (float64 .) (floor .) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- end }}

{{/*
What cannot be checked by the values schema alone.
*/}}
{{- define "mlreg-server.check" -}}
{{- if not (or .Values.database.existingSecret .Values.database.uri) }}
{{- fail "set database.existingSecret (a Secret with the database URI under database.uriKey) or database.uri" }}
{{- end }}
{{- if and (include "mlreg-server.localArtifacts" .) (gt (int .Values.replicaCount) 1) (not (has "ReadWriteMany" .Values.persistence.accessModes)) (not .Values.persistence.existingClaim) }}
{{- fail "artifacts on a volume with more than one replica need persistence.accessModes [ReadWriteMany] (or artifacts.root: s3://..., or replicaCount: 1)" }}
{{- end }}
{{- if and .Values.artifacts.s3.accessKeyId (not .Values.artifacts.s3.secretAccessKey) }}
{{- fail "artifacts.s3.accessKeyId is set: set artifacts.s3.secretAccessKey too" }}
{{- end }}
{{- end }}
