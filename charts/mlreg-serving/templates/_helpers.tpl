{{/*
Chart name, truncated to a DNS label.
*/}}
{{- define "mlreg-serving.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name of the release's resources: RELEASE-CHART, or RELEASE alone when it
already contains the chart name. Truncated to 63 characters (DNS label).
*/}}
{{- define "mlreg-serving.fullname" -}}
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
{{- define "mlreg-serving.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource.
*/}}
{{- define "mlreg-serving.labels" -}}
helm.sh/chart: {{ include "mlreg-serving.chart" . }}
{{ include "mlreg-serving.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mlreg
{{- end }}

{{/*
Labels that identify the release's resources (immutable parts of selectors).
*/}}
{{- define "mlreg-serving.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mlreg-serving.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Selector of the serving pods. The component label keeps the helm test pod, which carries
the release's labels too, out of the Service's endpoints.
*/}}
{{- define "mlreg-serving.serverSelectorLabels" -}}
{{ include "mlreg-serving.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/*
Name of the ServiceAccount the pods run as.
*/}}
{{- define "mlreg-serving.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mlreg-serving.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The model image: REPOSITORY@DIGEST when a digest is set, else REPOSITORY:TAG.
*/}}
{{- define "mlreg-serving.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (toString .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Seconds from "terminating" to SIGKILL: the preStop pause, then gunicorn's graceful shutdown
(which rounds MLREG_GRACEFUL_TIMEOUT up), then a margin.
*/}}
{{- define "mlreg-serving.terminationGracePeriodSeconds" -}}
{{- add .Values.shutdown.preStopSleepSeconds (include "mlreg-serving.gracefulSeconds" .) .Values.shutdown.extraGraceSeconds }}
{{- end }}

{{- define "mlreg-serving.gracefulSeconds" -}}
{{- .Values.serving.gracefulTimeout | ceil | int }}
{{- end }}

{{/*
The registry credentials, from an existing Secret, as the environment variables the REST
client reads (MLREG_TRACKING_TOKEN, or _USERNAME and _PASSWORD). Each key is optional.
*/}}
{{- define "mlreg-serving.registryCredentialsEnv" -}}
{{- $secret := include "mlreg-serving.registrySecret" . }}
{{- if $secret }}
{{- with .Values.registry }}
- name: MLREG_TRACKING_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .tokenKey }}
      optional: true
{{- if .existingSecret }}
- name: MLREG_TRACKING_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .usernameKey }}
      optional: true
- name: MLREG_TRACKING_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .passwordKey }}
      optional: true
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Where the TF Serving model lives inside the pod (--model_base_path); the shared emptyDir is
mounted here and the export is copied to <base>/<version>.
*/}}
{{- define "mlreg-serving.tfservingModelBasePath" -}}
{{- printf "/models/%s" .Values.tfserving.modelName }}
{{- end }}

{{/*
Path of TF Serving's batching parameters file (mounted from the tfserving ConfigMap).
*/}}
{{- define "mlreg-serving.tfservingBatchingFile" -}}
/etc/tfserving/batching_parameters.txt
{{- end }}

{{/*
A number as an environment variable value: whole numbers without Go's exponent notation
(values files give Helm float64s, which print 1e+06).
*/}}
{{- define "mlreg-serving.number" -}}
{{- if eq (float64 .) (floor .) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- end }}

{{/*
The Secret holding the registry token: the given one, the chart's own (when registry.token is
set), or nothing (a server without authentication).
*/}}
{{- define "mlreg-serving.registrySecret" -}}
{{- if .Values.registry.uri }}
{{- if .Values.registry.existingSecret }}
{{- .Values.registry.existingSecret }}
{{- else if .Values.registry.token }}
{{- printf "%s-registry" (include "mlreg-serving.fullname" .) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Registry mode needs the model's URI, and serves through the local backend (the TF Serving
sidecar copies its export out of the image, which then holds no model of its own).
*/}}
{{- define "mlreg-serving.checkRegistry" -}}
{{- if and .Values.registry.uri (not .Values.serving.follow.enabled) }}
{{- if not .Values.registry.modelUri }}
{{- fail "registry.uri is set: set registry.modelUri too (e.g. models:/mnist@champion)" }}
{{- end }}
{{- if .Values.tfserving.enabled }}
{{- fail "registry.uri and tfserving.enabled do not go together: the sidecar serves the export baked into the image; serve from the registry with the local backend" }}
{{- end }}
{{- end }}
{{- end }}
