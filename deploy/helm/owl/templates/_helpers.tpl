{{/* Names and labels. */}}
{{- define "owl.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "owl.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "owl.selectorLabels" -}}
app.kubernetes.io/name: {{ include "owl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "owl.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "owl.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: gateway
app.kubernetes.io/part-of: openwhisk
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "owl.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "owl.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The grace period: preStop + shutdown_delay + drain_timeout + 10 s of margin. */}}
{{- define "owl.gracePeriod" -}}
{{- $s := .Values.shutdown -}}
{{- $needed := add (int $s.preStopSleepSeconds) (int $s.delaySeconds) (int $s.drainTimeoutSeconds) -}}
{{- if kindIs "invalid" $s.terminationGracePeriodSeconds -}}
{{- add $needed 10 -}}
{{- else if lt (int $s.terminationGracePeriodSeconds) (int $needed) -}}
{{- fail (printf "shutdown.terminationGracePeriodSeconds (%d) must be at least preStopSleepSeconds + delaySeconds + drainTimeoutSeconds = %d" (int $s.terminationGracePeriodSeconds) (int $needed)) -}}
{{- else -}}
{{- int $s.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/* Where the CouchDB password is mounted (activations.store: couchdb). */}}
{{- define "owl.couchdbPasswordFile" -}}/etc/owl/couchdb/password{{- end -}}

{{/* The policy file (TOML). */}}
{{- define "owl.policy" -}}
{{- if .Values.policy.full -}}
{{ .Values.policy.full }}
{{- else -}}
# Written by the owl Helm chart from its values (docs/policy.md); routes come from
# policy.routes. Edit the values, not this ConfigMap: helm upgrade replaces it.

[controller]
url = {{ required "controller.url is required" .Values.controller.url | quote }}
timeout = {{ .Values.controller.timeout | quote }}
{{- with .Values.controller.apiHost }}
api_host = {{ . | quote }}
{{- end }}

[lambda]
region = {{ required "lambda.region is required (the AWS region of the functions)" .Values.lambda.region | quote }}

[limits]
{{- with .Values.throttles.invocationsPerMinute }}
invocations_per_minute = {{ int . }}
{{- end }}
{{- with .Values.throttles.concurrentInvocations }}
concurrent_invocations = {{ int . }}
{{- end }}
backend = {{ .Values.throttles.backend | quote }}
{{- if eq .Values.throttles.backend "redis" }}
redis_url = {{ required "throttles.redisUrl is required with backend redis" .Values.throttles.redisUrl | quote }}
on_redis_error = {{ .Values.throttles.onRedisError | quote }}
{{- end }}

[activations]
store = {{ .Values.activations.store | quote }}
data_dir = "/var/lib/owl"
{{- if eq .Values.activations.store "couchdb" }}

[couchdb]
url = {{ required "activations.couchdb.url is required with store couchdb" .Values.activations.couchdb.url | quote }}
db_prefix = {{ .Values.activations.couchdb.dbPrefix | quote }}
{{- with .Values.activations.couchdb.username }}
username = {{ . | quote }}
password_file = {{ include "owl.couchdbPasswordFile" $ | quote }}
{{- end }}
{{- end }}

[server]
shutdown_delay = "{{ int .Values.shutdown.delaySeconds }}s"
drain_timeout = "{{ int .Values.shutdown.drainTimeoutSeconds }}s"

{{ .Values.policy.routes }}
{{- end -}}
{{- end -}}
