{{/*
The variables from Secrets, shared by the server and the migration Job: the database URI (and,
for the server, the web UI's signing key, the S3 keys and the first admin's password).
*/}}
{{- define "mlreg-server.databaseEnv" -}}
- name: MLREG_TRACKING_URI
  valueFrom:
    secretKeyRef:
      name: {{ include "mlreg-server.databaseSecret" . }}
      key: {{ .Values.database.uriKey }}
{{- end }}

{{- define "mlreg-server.secretEnv" -}}
{{ include "mlreg-server.databaseEnv" . }}
- name: MLREG_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "mlreg-server.uiSecret" . }}
      key: {{ .Values.ui.secretKeyKey }}
{{- with include "mlreg-server.s3Secret" . }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: AWS_SECRET_ACCESS_KEY
{{- end }}
{{- with include "mlreg-server.adminSecret" . }}
- name: MLREG_ADMIN_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.auth.passwordKey }}
{{- end }}
{{- end }}
