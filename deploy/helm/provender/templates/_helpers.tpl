{{/* Names -------------------------------------------------------------------------------------------------- */}}

{{- define "provender.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's base name; component names append a suffix, so keep room for it (52 for a StatefulSet, minus "-postgres"). */}}
{{- define "provender.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 42 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 42 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 42 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "provender.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "provender.core.fullname" -}}{{ include "provender.fullname" . }}-core{{- end -}}
{{- define "provender.serving.fullname" -}}{{ include "provender.fullname" . }}-serving{{- end -}}
{{- define "provender.postgres.fullname" -}}{{ include "provender.fullname" . }}-postgres{{- end -}}
{{- define "provender.redis.fullname" -}}{{ include "provender.fullname" . }}-redis{{- end -}}
{{- define "provender.jobTemplate.fullname" -}}{{ include "provender.fullname" . }}-spark-job-template{{- end -}}

{{/* Labels ------------------------------------------------------------------------------------------------- */}}

{{- define "provender.labels" -}}
helm.sh/chart: {{ include "provender.chart" . }}
app.kubernetes.io/name: {{ include "provender.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: provender
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "core") */}}
{{- define "provender.selectorLabels" -}}
app.kubernetes.io/name: {{ include "provender.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "provender.componentLabels" -}}
{{ include "provender.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Service accounts --------------------------------------------------------------------------------------- */}}

{{- define "provender.core.serviceAccountName" -}}
{{- if .Values.core.serviceAccount.create -}}
{{- default (include "provender.core.fullname" .) .Values.core.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.core.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "provender.serving.serviceAccountName" -}}
{{- if .Values.serving.serviceAccount.create -}}
{{- default (include "provender.serving.fullname" .) .Values.serving.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serving.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "provender.spark.serviceAccountName" -}}
{{- if .Values.spark.serviceAccount.create -}}
{{- default (printf "%s-spark" (include "provender.fullname" .)) .Values.spark.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.spark.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Images ------------------------------------------------------------------------------------------------- */}}

{{- define "provender.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "provender.spark.image" -}}
{{- default (include "provender.image" .) .Values.spark.image -}}
{{- end -}}

{{/* Addresses ---------------------------------------------------------------------------------------------- */}}

{{/* Core's gRPC address as Serving and the SDK use it: host:port. */}}
{{- define "provender.core.address" -}}
{{- printf "%s.%s.svc:%d" (include "provender.core.fullname" .) .Release.Namespace (int .Values.core.port) -}}
{{- end -}}

{{- define "provender.serving.address" -}}
{{- printf "%s.%s.svc:%d" (include "provender.serving.fullname" .) .Release.Namespace (int .Values.serving.port) -}}
{{- end -}}

{{- define "provender.jobService.address" -}}
{{- printf "%s.%s.svc:%d" (include "provender.core.fullname" .) .Release.Namespace (int .Values.core.jobServicePort) -}}
{{- end -}}

{{- define "provender.postgres.host" -}}
{{- printf "%s.%s.svc" (include "provender.postgres.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "provender.redis.host" -}}
{{- printf "%s.%s.svc" (include "provender.redis.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/* The name of the Secret and key holding the bundled Postgres password. */}}
{{- define "provender.postgres.secretName" -}}
{{- default (include "provender.postgres.fullname" .) .Values.postgres.auth.existingSecret -}}
{{- end -}}

{{- define "provender.postgres.secretKey" -}}
{{- if .Values.postgres.auth.existingSecret -}}
{{- .Values.postgres.auth.existingSecretKey -}}
{{- else -}}
postgres-password
{{- end -}}
{{- end -}}

{{/*
The env entries that set PROVENDER_POSTGRES_URL in Core. The bundled Postgres: the password comes from its Secret
into POSTGRES_PASSWORD and the URL refers to it with Kubernetes' $(VAR) expansion, so the URL never appears in
the pod spec with the password in it. External: the URL from the values or from an existing Secret.
*/}}
{{- define "provender.postgres.env" -}}
{{- if .Values.postgres.enabled }}
- name: POSTGRES_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "provender.postgres.secretName" . }}
      key: {{ include "provender.postgres.secretKey" . }}
- name: PROVENDER_POSTGRES_URL
  value: {{ printf "postgresql://%s:$(POSTGRES_PASSWORD)@%s:5432/%s" .Values.postgres.auth.username (include "provender.postgres.host" .) .Values.postgres.auth.database | quote }}
{{- else if .Values.externalPostgres.existingSecret }}
- name: PROVENDER_POSTGRES_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.externalPostgres.existingSecret }}
      key: {{ .Values.externalPostgres.existingSecretKey }}
{{- else if .Values.externalPostgres.url }}
- name: PROVENDER_POSTGRES_URL
  value: {{ .Values.externalPostgres.url | quote }}
{{- else }}
{{- fail "postgres.enabled is false: set externalPostgres.url or externalPostgres.existingSecret" }}
{{- end }}
{{- end -}}

{{/* The env entry that sets PROVENDER_REDIS_URL (Core, for the jobs, and Serving). */}}
{{- define "provender.redis.env" -}}
{{- if .Values.redis.enabled }}
- name: PROVENDER_REDIS_URL
  value: {{ printf "redis://%s:6379" (include "provender.redis.host" .) | quote }}
{{- else if .Values.externalRedis.existingSecret }}
- name: PROVENDER_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.externalRedis.existingSecret }}
      key: {{ .Values.externalRedis.existingSecretKey }}
{{- else if .Values.externalRedis.cluster.enabled }}
{{- if not .Values.externalRedis.cluster.nodes }}
{{- fail "externalRedis.cluster.enabled is true: list the cluster's seed nodes (host:port) in externalRedis.cluster.nodes" }}
{{- end }}
- name: PROVENDER_REDIS_URL
  value: {{ join "," .Values.externalRedis.cluster.nodes | quote }}
{{- else if .Values.externalRedis.url }}
- name: PROVENDER_REDIS_URL
  value: {{ .Values.externalRedis.url | quote }}
{{- else }}
{{- fail "redis.enabled is false: set externalRedis.url, externalRedis.cluster.nodes or externalRedis.existingSecret" }}
{{- end }}
{{- end -}}

{{/* Container-level security context, shared by every container of the chart. */}}
{{- define "provender.containerSecurityContext" -}}
{{- toYaml .Values.securityContext }}
{{- end -}}

{{/* TLS (values `tls`): the Secret, where it is mounted, the env entries and volume of Core and Serving, and
their probes (Kubernetes' gRPC probes cannot speak TLS: a TCP check then). */}}
{{- define "provender.tls.secretName" -}}
{{- .Values.tls.secretName | default (printf "%s-tls" (include "provender.fullname" .)) -}}
{{- end -}}
{{- define "provender.tls.dir" -}}/etc/provender-tls{{- end -}}

{{- define "provender.tls.env" -}}
{{- if .Values.tls.enabled }}
- name: PROVENDER_TLS_CERT
  value: {{ include "provender.tls.dir" . }}/tls.crt
- name: PROVENDER_TLS_KEY
  value: {{ include "provender.tls.dir" . }}/tls.key
{{- if .Values.tls.clientAuth }}
- name: PROVENDER_TLS_CLIENT_CA
  value: {{ include "provender.tls.dir" . }}/ca.crt
{{- end }}
{{- if .Values.tls.metrics }}
- name: PROVENDER_METRICS_TLS
  value: "true"
{{- end }}
{{- end }}
{{- end -}}

{{- define "provender.tls.volumeMount" -}}
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: {{ include "provender.tls.dir" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "provender.tls.volume" -}}
{{- if .Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ include "provender.tls.secretName" . }}
{{- end }}
{{- end -}}

{{/* Authentication (values `auth`): the generated Secret, where its keys are mounted, and the env entries of
Core and Serving. Core mounts only the `tokens` key (hashes); Serving mounts it and its own `serving-token`. */}}
{{- define "provender.auth.secretName" -}}{{ include "provender.fullname" . }}-auth{{- end -}}
{{- define "provender.auth.dir" -}}/etc/provender-auth{{- end -}}
{{- define "provender.auth.extraDir" -}}/etc/provender-auth-extra{{- end -}}

{{/* The token files: the chart's, and the user's Secret's when given (comma-separated). */}}
{{- define "provender.auth.tokensFiles" -}}
{{- $files := list (printf "%s/tokens" (include "provender.auth.dir" .)) -}}
{{- if .Values.auth.tokens.existingSecret -}}
{{- $files = append $files (printf "%s/tokens" (include "provender.auth.extraDir" .)) -}}
{{- end -}}
{{- join "," $files -}}
{{- end -}}

{{/* PRINCIPAL=ROLE,...: the chart's two tokens, then auth.globalRoles (which replace them for the same principal). */}}
{{- define "provender.auth.globalRoles" -}}
{{- $roles := merge (deepCopy .Values.auth.globalRoles) (dict "token:admin" "admin" "token:provender-serving" "reader") -}}
{{- $pairs := list -}}
{{- range $principal, $role := $roles -}}
{{- $pairs = append $pairs (printf "%s=%s" $principal $role) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* The env entries Core and Serving share. */}}
{{- define "provender.auth.env" -}}
{{- if .Values.auth.enabled }}
- name: PROVENDER_AUTH_TOKENS_FILE
  value: {{ include "provender.auth.tokensFiles" . | quote }}
- name: PROVENDER_AUTH_PROTECT_HEALTH
  value: {{ .Values.auth.protectHealth | quote }}
{{- with .Values.auth.oidc.issuer }}
- name: PROVENDER_AUTH_OIDC_ISSUER
  value: {{ . | quote }}
- name: PROVENDER_AUTH_OIDC_AUDIENCE
  value: {{ $.Values.auth.oidc.audience | quote }}
- name: PROVENDER_AUTH_GROUPS_CLAIM
  value: {{ $.Values.auth.oidc.groupsClaim | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "provender.auth.volumeMount" -}}
{{- if .Values.auth.enabled }}
- name: auth
  mountPath: {{ include "provender.auth.dir" . }}
  readOnly: true
{{- if .Values.auth.tokens.existingSecret }}
- name: auth-extra
  mountPath: {{ include "provender.auth.extraDir" . }}
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{/* The volumes: (dict "ctx" $ "keys" (list "tokens" ...)), the keys of the generated Secret the pod gets. */}}
{{- define "provender.auth.volume" -}}
{{- if .ctx.Values.auth.enabled }}
- name: auth
  secret:
    secretName: {{ include "provender.auth.secretName" .ctx }}
    items:
      {{- range .keys }}
      - key: {{ . }}
        path: {{ . }}
      {{- end }}
{{- with .ctx.Values.auth.tokens.existingSecret }}
- name: auth-extra
  secret:
    secretName: {{ . }}
    items:
      - key: {{ $.ctx.Values.auth.tokens.existingSecretKey }}
        path: tokens
{{- end }}
{{- end }}
{{- end -}}

{{/* Whether the probes must be TCP checks: Kubernetes' gRPC probes speak neither TLS nor send a credential. */}}
{{- define "provender.probe.tcp" -}}
{{- if or .Values.tls.enabled (and .Values.auth.enabled .Values.auth.protectHealth) -}}true{{- end -}}
{{- end -}}

{{/* A probe of the gRPC port `port`: grpc.health.v1, or with TLS on or health checks behind authentication, a
TCP check. */}}
{{- define "provender.probe" -}}
{{- if include "provender.probe.tcp" .ctx }}
tcpSocket:
  port: {{ .port }}
{{- else }}
grpc:
  port: {{ .port }}
{{- end }}
{{- end -}}
