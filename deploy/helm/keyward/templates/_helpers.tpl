{{/*
Chart name, truncated to the 63 characters a DNS label allows.
*/}}
{{- define "keyward.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name. Component suffixes (-redis, -mockanthropic, …) are appended to
it, so it is cut to 40 characters to leave room for them within 63.
*/}}
{{- define "keyward.fullname" -}}
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

{{- define "keyward.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object. Takes a dict: ctx (the root context) and name (the component's
app.kubernetes.io/name), component (app.kubernetes.io/component).
*/}}
{{- define "keyward.labels" -}}
helm.sh/chart: {{ include "keyward.chart" .ctx }}
{{ include "keyward.selectorLabels" . }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: keyward
{{- if .ctx.Chart.AppVersion }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels: only app.kubernetes.io/{name,instance}, so they never change on upgrade.
Each component has its own name (keyward, keyward-redis, …) so selectors never overlap.
*/}}
{{- define "keyward.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- end }}

{{/* Per-component label shortcuts. */}}
{{- define "keyward.gateway.labels" -}}
{{ include "keyward.labels" (dict "ctx" . "name" (include "keyward.name" .) "component" "gateway") }}
{{- end }}
{{- define "keyward.gateway.selectorLabels" -}}
{{ include "keyward.selectorLabels" (dict "ctx" . "name" (include "keyward.name" .)) }}
{{- end }}
{{- define "keyward.redis.name" -}}
{{- printf "%s-redis" (include "keyward.name" .) | trunc 63 }}
{{- end }}
{{- define "keyward.redis.labels" -}}
{{ include "keyward.labels" (dict "ctx" . "name" (include "keyward.redis.name" .) "component" "redis") }}
{{- end }}
{{- define "keyward.redis.selectorLabels" -}}
{{ include "keyward.selectorLabels" (dict "ctx" . "name" (include "keyward.redis.name" .)) }}
{{- end }}
{{- define "keyward.mock.name" -}}
{{- printf "%s-mockanthropic" (include "keyward.name" .) | trunc 63 }}
{{- end }}
{{- define "keyward.mock.labels" -}}
{{ include "keyward.labels" (dict "ctx" . "name" (include "keyward.mock.name" .) "component" "mockanthropic") }}
{{- end }}
{{- define "keyward.mock.selectorLabels" -}}
{{ include "keyward.selectorLabels" (dict "ctx" . "name" (include "keyward.mock.name" .)) }}
{{- end }}
{{- define "keyward.dashboard.name" -}}
{{- printf "%s-dashboard" (include "keyward.name" .) | trunc 63 }}
{{- end }}
{{- define "keyward.dashboard.labels" -}}
{{ include "keyward.labels" (dict "ctx" . "name" (include "keyward.dashboard.name" .) "component" "dashboard") }}
{{- end }}
{{- define "keyward.dashboard.selectorLabels" -}}
{{ include "keyward.selectorLabels" (dict "ctx" . "name" (include "keyward.dashboard.name" .)) }}
{{- end }}

{{/*
The label that lets a pod in the release namespace through the gateway's NetworkPolicy.
*/}}
{{- define "keyward.clientLabel" -}}
{{ include "keyward.fullname" . }}-client
{{- end }}

{{- define "keyward.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "keyward.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference from {repository, tag, digest}; the tag defaults to the appVersion.
Takes a dict: image, ctx.
*/}}
{{- define "keyward.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{/* Object names. */}}
{{- define "keyward.redis.fullname" -}}
{{- printf "%s-redis" (include "keyward.fullname" .) }}
{{- end }}
{{- define "keyward.mock.fullname" -}}
{{- printf "%s-mockanthropic" (include "keyward.fullname" .) }}
{{- end }}
{{- define "keyward.dashboard.fullname" -}}
{{- printf "%s-dashboard" (include "keyward.fullname" .) }}
{{- end }}
{{- define "keyward.metrics.fullname" -}}
{{- printf "%s-metrics" (include "keyward.fullname" .) }}
{{- end }}

{{/*
The Secret that holds the Anthropic key: the user's existingSecret or the chart's own.
*/}}
{{- define "keyward.apiKey.secretName" -}}
{{- if .Values.externalSecret.enabled }}
{{- default (printf "%s-api-key" (include "keyward.fullname" .)) .Values.externalSecret.targetName }}
{{- else }}
{{- default (printf "%s-api-key" (include "keyward.fullname" .)) .Values.apiKey.existingSecret }}
{{- end }}
{{- end }}
{{- define "keyward.apiKey.configured" -}}
{{- if or .Values.apiKey.existingSecret .Values.apiKey.value .Values.externalSecret.enabled .Values.secretsStoreCSI.enabled }}true{{ end }}
{{- end }}
{{- define "keyward.secretProviderClassName" -}}
{{- printf "%s-api-key" (include "keyward.fullname" .) }}
{{- end }}

{{/*
Redis password Secret: used when redis.auth.enabled and Redis is not "none".
*/}}
{{- define "keyward.redis.auth" -}}
{{- if and .Values.redis.auth.enabled (ne .Values.redis.mode "none") }}true{{ end }}
{{- end }}
{{- define "keyward.redis.secretName" -}}
{{- default (printf "%s-redis" (include "keyward.fullname" .)) .Values.redis.auth.existingSecret }}
{{- end }}

{{/*
The number of replicas that share a limit while Redis is down.
*/}}
{{- define "keyward.redisLocalShare" -}}
{{- if .Values.gateway.redisLocalShare }}
{{- .Values.gateway.redisLocalShare }}
{{- else if .Values.autoscaling.enabled }}
{{- .Values.autoscaling.maxReplicas }}
{{- else }}
{{- .Values.replicaCount }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: long enough for the preStop pause, the longest stream and
the drain deadline, plus slack for the process to exit.
*/}}
{{- define "keyward.terminationGracePeriodSeconds" -}}
{{- $g := .Values.gateway }}
{{- $min := add $g.preStopSleepSeconds $g.maxStreamDurationSeconds $g.shutdownTimeoutSeconds 10 }}
{{- if $g.terminationGracePeriodSeconds }}
{{- if lt (int $g.terminationGracePeriodSeconds) (int $min) }}
{{- fail (printf "gateway.terminationGracePeriodSeconds=%v is shorter than preStopSleepSeconds + maxStreamDurationSeconds + shutdownTimeoutSeconds + 10 = %v: streams would be cut off on every rollout" $g.terminationGracePeriodSeconds $min) }}
{{- end }}
{{- $g.terminationGracePeriodSeconds }}
{{- else }}
{{- $min }}
{{- end }}
{{- end }}

{{/*
Refuse value combinations that would render but not work, with a message that says what to
change. Included from the Deployment so it runs on every render.
*/}}
{{- define "keyward.validate" -}}
{{- if and (not (include "keyward.apiKey.configured" .)) (not .Values.mockanthropic.enabled) }}
{{- fail "no Anthropic API key: set apiKey.existingSecret (recommended) or apiKey.value, or enable mockanthropic for an offline demo" }}
{{- end }}
{{- $sources := list }}
{{- if .Values.apiKey.existingSecret }}{{ $sources = append $sources "apiKey.existingSecret" }}{{ end }}
{{- if .Values.apiKey.value }}{{ $sources = append $sources "apiKey.value" }}{{ end }}
{{- if .Values.secretsStoreCSI.enabled }}{{ $sources = append $sources "secretsStoreCSI.enabled" }}{{ end }}
{{- if .Values.externalSecret.enabled }}{{ $sources = append $sources "externalSecret.enabled" }}{{ end }}
{{- if gt (len $sources) 1 }}
{{- fail (printf "the Anthropic key has more than one source (%s): keep one" (join ", " $sources)) }}
{{- end }}
{{- if and (eq .Values.redis.mode "none") (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) }}
{{- fail "redis.mode=none keeps rate limits per process: use exactly one replica without autoscaling, or redis.mode=bundled/external" }}
{{- end }}
{{- if and (eq .Values.redis.mode "bundled") (not .Values.redis.auth.enabled) }}
{{- fail "redis.mode=bundled needs redis.auth.enabled=true: the bundled Redis runs with protected-mode yes, which refuses unauthenticated connections from the gateway pods" }}
{{- end }}
{{- if eq .Values.redis.mode "external" }}
{{- $e := .Values.redis.external }}
{{- $n := 0 }}
{{- if $e.url }}{{ $n = add1 $n }}{{ end }}
{{- if $e.sentinel.masterName }}{{ $n = add1 $n }}{{ end }}
{{- if $e.clusterAddrs }}{{ $n = add1 $n }}{{ end }}
{{- if ne (int $n) 1 }}
{{- fail "redis.mode=external needs exactly one of redis.external.url, redis.external.sentinel.masterName (with addrs) or redis.external.clusterAddrs" }}
{{- end }}
{{- if and $e.sentinel.masterName (not $e.sentinel.addrs) }}
{{- fail "redis.external.sentinel.masterName is set but redis.external.sentinel.addrs is empty" }}
{{- end }}
{{- if and (eq .Values.redis.mode "external") .Values.redis.auth.enabled (not .Values.redis.auth.existingSecret) (not .Values.redis.auth.password) }}
{{- fail "redis.mode=external with redis.auth.enabled needs redis.auth.existingSecret or redis.auth.password (or redis.auth.enabled=false)" }}
{{- end }}
{{- end }}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) }}
{{- fail "autoscaling.maxReplicas must be >= autoscaling.minReplicas" }}
{{- end }}
{{- if and .Values.auth.required (not (or .Values.auth.jwt.existingSecret .Values.auth.jwt.publicKeyExistingSecret .Values.auth.jwt.jwksURL .Values.auth.hmac.existingSecret)) }}
{{- fail "auth.required=true but no credential source: set auth.jwt.existingSecret, auth.jwt.publicKeyExistingSecret, auth.jwt.jwksURL or auth.hmac.existingSecret" }}
{{- end }}
{{- end }}
