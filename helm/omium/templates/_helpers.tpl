{{/*
Names, labels and the list of processes every per-process template loops over.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "omium.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name. Truncated to 40 characters so that "<fullname>-projection-opensearch"
(the longest component name) still fits the 63 characters of a Kubernetes name.
*/}}
{{- define "omium.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "name-version" for the helm.sh/chart label. */}}
{{- define "omium.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "omium.labels" -}}
helm.sh/chart: {{ include "omium.chart" . }}
{{ include "omium.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: omium
{{- end }}

{{/* The labels that select the release's pods. */}}
{{- define "omium.selectorLabels" -}}
app.kubernetes.io/name: {{ include "omium.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one process: call with (dict "root" $ "component" "gateway"). */}}
{{- define "omium.componentLabels" -}}
{{ include "omium.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Selector labels of one process: call with (dict "root" $ "component" "gateway"). */}}
{{- define "omium.componentSelectorLabels" -}}
{{ include "omium.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The object name of one process: call with (dict "root" $ "component" "gateway"). */}}
{{- define "omium.componentName" -}}
{{- printf "%s-%s" (include "omium.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "omium.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "omium.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "omium.configMapName" -}}
{{- printf "%s-config" (include "omium.fullname" .) }}
{{- end }}

{{- define "omium.probeConfigMapName" -}}
{{- printf "%s-probe" (include "omium.fullname" .) }}
{{- end }}

{{/* The Secret the processes read: the existing one, or the one the chart creates. */}}
{{- define "omium.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- printf "%s-secrets" (include "omium.fullname" .) }}
{{- end }}
{{- end }}

{{- define "omium.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
Secret settings: values key -> environment variable, and whether an existing Secret must have it.
*/}}
{{- define "omium.secretSettings" -}}
- {key: postgresPassword, env: OMIUM_POSTGRES__PASSWORD, required: true}
- {key: jwtSecret, env: OMIUM_GATEWAY__AUTH__JWT_SECRET, required: false}
- {key: metricsToken, env: OMIUM_GATEWAY__METRICS_TOKEN, required: false}
- {key: awsAccessKeyId, env: OMIUM_AWS__ACCESS_KEY_ID, required: false}
- {key: awsSecretAccessKey, env: OMIUM_AWS__SECRET_ACCESS_KEY, required: false}
- {key: llmApiKey, env: OMIUM_LLM__API_KEY, required: false}
- {key: redisUrl, env: OMIUM_REDIS__URL, required: false}
- {key: opensearchUrl, env: OMIUM_OPENSEARCH__URL, required: false}
- {key: kafkaSaslPassword, env: OMIUM_KAFKA__SASL_PASSWORD, required: false}
{{- end }}

{{/*
Every enabled process, as a YAML list: name (component), the `omium` arguments, where its values
live (group and key) and whether it is the gateway. Templates read it with fromYamlArray.
*/}}
{{- define "omium.processes" -}}
{{- if .Values.gateway.enabled }}
- {component: gateway, group: gateway, key: "", command: [gateway], http: true}
{{- end }}
{{- if .Values.relay.enabled }}
- {component: relay, group: relay, key: "", command: [relay], http: false}
{{- end }}
{{- range $name, $p := .Values.processors }}
{{- if $p.enabled }}
- {component: {{ printf "worker-%s" $name }}, group: processors, key: {{ $name }}, command: [worker, {{ $name }}], http: false}
{{- end }}
{{- end }}
{{- range $name, $p := .Values.projections }}
{{- if $p.enabled }}
- {component: {{ printf "projection-%s" $name }}, group: projections, key: {{ $name }}, command: [project, {{ $name }}], http: false}
{{- end }}
{{- end }}
{{- end }}

{{/* The values of one process from its entry in omium.processes: (dict "root" $ "p" $p). */}}
{{- define "omium.processValues" -}}
{{- $group := index .root.Values .p.group }}
{{- if .p.key }}
{{- toYaml (index $group .p.key) }}
{{- else }}
{{- toYaml $group }}
{{- end }}
{{- end }}

{{/*
A container's settings: the ConfigMap, the Secret's keys as OMIUM_* variables, and the
component's own env. Call with (dict "root" $ "env" <map> "healthPort" <bool>); healthPort adds
OMIUM_HEALTH__PORT for processes probed over HTTP on the health port.
*/}}
{{- define "omium.containerEnv" -}}
{{- $root := .root -}}
envFrom:
  - configMapRef:
      name: {{ include "omium.configMapName" $root }}
env:
  - name: HOME
    value: /tmp
  - name: PYTHONDONTWRITEBYTECODE
    value: "1"
  {{- if .healthPort }}
  # The port the process should serve GET /health and GET /ready on (docs/deploy.md).
  - name: OMIUM_HEALTH__PORT
    value: {{ $root.Values.probes.healthPort | quote }}
  {{- end }}
  {{- range $s := include "omium.secretSettings" $root | fromYamlArray }}
  {{- if or $root.Values.secrets.existingSecret (index $root.Values.secrets.values $s.key) }}
  - name: {{ $s.env }}
    valueFrom:
      secretKeyRef:
        name: {{ include "omium.secretName" $root }}
        key: {{ index $root.Values.secrets.keys $s.key }}
        {{- if and $root.Values.secrets.existingSecret (not $s.required) }}
        optional: true
        {{- end }}
  {{- end }}
  {{- end }}
  {{- range $name, $value := merge (dict) (.env | default dict) $root.Values.extraEnv }}
  - name: {{ $name }}
    value: {{ $value | quote }}
  {{- end }}
{{- end }}
