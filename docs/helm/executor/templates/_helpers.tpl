{{- define "executor.name" -}}{{ .Release.Name }}-executor{{- end -}}

{{- define "executor.secret" -}}
{{- if .Values.existingSecret -}}{{ .Values.existingSecret }}{{- else -}}{{ include "executor.name" . }}{{- end -}}
{{- end -}}

{{- define "executor.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag }}{{- end -}}

{{- define "executor.securityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
{{- end -}}
