{{/*
Helpers shared by every template. Values are printed through quote / toYaml / toJson only,
and nothing here calls `tpl`: text in values is data, never a template.
*/}}

{{- define "archplan.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name: the release name alone when it already contains the chart name. */}}
{{- define "archplan.fullname" -}}
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

{{/* "<fullname>-<suffix>", cut to 63 characters. Usage: include "archplan.componentName" (list $ "web") */}}
{{- define "archplan.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "archplan.fullname" $root | trunc (int (sub 62 (len (index . 1))))) (index . 1) | trimSuffix "-" -}}
{{- end -}}

{{- define "archplan.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "archplan.selectorLabels" -}}
app.kubernetes.io/name: {{ include "archplan.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "archplan.labels" -}}
helm.sh/chart: {{ include "archplan.chart" . }}
{{ include "archplan.selectorLabels" . }}
app.kubernetes.io/version: {{ include "archplan.tag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: archplan
{{- end -}}

{{/* Usage: include "archplan.componentSelectorLabels" (list $ "web") */}}
{{- define "archplan.componentSelectorLabels" -}}
{{ include "archplan.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "archplan.componentLabels" -}}
{{ include "archplan.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "archplan.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "archplan.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret holding ARCHPLAN_SECRET_KEY and ARCHPLAN_DATABASE_URL. */}}
{{- define "archplan.secretName" -}}
{{- default (include "archplan.fullname" .) .Values.secret.existingSecret -}}
{{- end -}}

{{- define "archplan.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{/* repository@digest when a digest is set, else repository:tag. */}}
{{- define "archplan.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (include "archplan.tag" .) -}}
{{- end -}}
{{- end -}}

{{/*
Checkov skips that hold for every archplan pod, as pod-controller annotations:
- CKV_K8S_35: the app reads ARCHPLAN_SECRET_KEY / ARCHPLAN_DATABASE_URL from environment
  variables only (pydantic-settings), so the Secret is mapped to env, key by key.
- CKV_K8S_43, only while image.digest is empty: the chart cannot know the digest of the
  image you build; the tag is pinned (never "latest") and setting a digest re-enables it.
*/}}
{{- define "archplan.checkovSkips" -}}
checkov.io/skip1: "CKV_K8S_35=archplan reads its secret settings from ARCHPLAN_* environment variables only"
{{- if not .Values.image.digest }}
checkov.io/skip2: "CKV_K8S_43=Set image.digest per install; until then the tag is pinned and never latest"
{{- end }}
{{- end -}}

{{- define "archplan.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser | int }}
runAsGroup: {{ .Values.podSecurity.runAsGroup | int }}
fsGroup: {{ .Values.podSecurity.fsGroup | int }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "archplan.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser | int }}
runAsGroup: {{ .Values.podSecurity.runAsGroup | int }}
privileged: false
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Pod-level fields shared by every pod: service account, security, scheduling.
Usage: include "archplan.podCommon" (dict "root" $ "serviceAccount" (include "archplan.serviceAccountName" $))
*/}}
{{- define "archplan.podCommon" -}}
{{- $v := .root.Values -}}
serviceAccountName: {{ .serviceAccount }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- include "archplan.podSecurityContext" .root | nindent 2 }}
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
The non-secret ARCHPLAN_* settings as a name -> string map (the ConfigMap's data, and the
migration Job's environment: the hook runs before the ConfigMap exists on first install).
*/}}
{{- define "archplan.config" -}}
{{- $c := .Values.config -}}
{{- $env := dict
  "ARCHPLAN_ENVIRONMENT" "production"
  "ARCHPLAN_HOST" "0.0.0.0"
  "ARCHPLAN_PORT" "8000"
  "ARCHPLAN_LOG_LEVEL" $c.logLevel
  "ARCHPLAN_SOLVER" $c.solver
  "ARCHPLAN_SOLVER_TIME_LIMIT_S" (toString $c.solverTimeLimitS)
  "ARCHPLAN_MAX_BODY_BYTES" (toString (int64 $c.maxBodyBytes))
  "ARCHPLAN_SESSION_DAYS" (toString $c.sessionDays)
  "ARCHPLAN_PASSWORD_SCRYPT_N" (toString (int64 $c.passwordScryptN))
  "ARCHPLAN_RATE_LIMIT_PER_MINUTE" (toString (int64 $c.rateLimitPerMinute))
  "ARCHPLAN_SIGN_IN_ATTEMPTS_PER_MINUTE" (toString (int64 $c.signInAttemptsPerMinute))
  "ARCHPLAN_JOB_POLL_S" (toString $c.jobPollS)
  "ARCHPLAN_JOB_HEARTBEAT_S" (toString $c.jobHeartbeatS)
  "ARCHPLAN_JOB_STALE_AFTER_S" (toString $c.jobStaleAfterS)
  "ARCHPLAN_JOB_MAX_ATTEMPTS" (toString (int64 $c.jobMaxAttempts))
  "ARCHPLAN_JOB_ISOLATION" $c.jobIsolation
  "ARCHPLAN_JOB_NICE" (toString (int64 $c.jobNice))
  "ARCHPLAN_API_KEY_CACHE_S" (toString $c.apiKeyCacheS)
-}}
{{- if .Values.worker.enabled -}}
{{- $_ := set $env "ARCHPLAN_JOB_BACKEND" "procrastinate" -}}
{{- end -}}
{{- range $name := keys $c.extraEnv | sortAlpha -}}
{{- if or (hasKey $env $name) (eq $name $.Values.secret.keys.secretKey) (eq $name $.Values.secret.keys.databaseUrl) (eq $name "ARCHPLAN_SECRET_KEY") (eq $name "ARCHPLAN_DATABASE_URL") (eq $name "ARCHPLAN_JOB_WORKERS") -}}
{{- fail (printf "config.extraEnv.%s: the chart sets %s itself" $name $name) -}}
{{- end -}}
{{- $_ := set $env $name (index $c.extraEnv $name) -}}
{{- end -}}
{{- toYaml $env -}}
{{- end -}}

{{/* env entries for the two secret settings, read key by key from the Secret. */}}
{{- define "archplan.secretEnv" -}}
- name: ARCHPLAN_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .secretName | quote }}
      key: {{ .root.Values.secret.keys.secretKey | quote }}
- name: ARCHPLAN_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .secretName | quote }}
      key: {{ .root.Values.secret.keys.databaseUrl | quote }}
{{- end -}}

{{/* The migration Job's environment: the settings inline, the secrets from the hook Secret. */}}
{{- define "archplan.migrateEnv" -}}
{{- include "archplan.envList" (include "archplan.config" .root | fromYaml) }}
{{ include "archplan.secretEnv" . }}
- name: HOME
  value: /tmp
{{- end -}}

{{/* A name -> string map as env entries, sorted by name. */}}
{{- define "archplan.envList" -}}
{{- range $name := keys . | sortAlpha }}
- name: {{ $name }}
  value: {{ index $ $name | quote }}
{{- end }}
{{- end -}}

{{/*
A component's extraEnv (name -> string) as env entries, sorted by name. Names the chart
sets in the same env list are refused (a duplicate would silently win or lose).
Usage: include "archplan.extraEnv" (dict "env" .extraEnv "key" "web.extraEnv" "reserved" (list …))
*/}}
{{- define "archplan.extraEnv" -}}
{{- $reserved := concat .reserved (list "ARCHPLAN_SECRET_KEY" "ARCHPLAN_DATABASE_URL") -}}
{{- range $name := keys .env | sortAlpha }}
{{- if has $name $reserved }}
{{- fail (printf "%s.%s: the chart sets %s itself" $.key $name $name) }}
{{- end }}
- name: {{ $name }}
  value: {{ index $.env $name | quote }}
{{- end }}
{{- end -}}

{{/* Rolls the pods when the chart's Secret changes (a hash, never the values). */}}
{{- define "archplan.secretChecksum" -}}
{{- $s := .Values.secret -}}
{{- list $s.existingSecret $s.keys.secretKey $s.keys.databaseUrl $s.secretKey $s.databaseUrl | toJson | sha256sum -}}
{{- end -}}

{{/* Checks across values that the schema cannot express; each fails the render with the key to fix. */}}
{{/* Best-effort spread over zones and nodes. Usage: include "archplan.spread" (list $ "web") */}}
{{- define "archplan.spread" -}}
topologySpreadConstraints:
{{- range $key := list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - maxSkew: 1
    topologyKey: {{ $key }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "archplan.componentSelectorLabels" $ | nindent 8 }}
{{- end }}
{{- end -}}

{{- define "archplan.validate" -}}
{{- $s := .Values.secret -}}
{{- if $s.existingSecret -}}
{{- if or $s.secretKey $s.databaseUrl -}}
{{- fail "secret.existingSecret is set: leave secret.secretKey and secret.databaseUrl empty (they live in that Secret)" -}}
{{- end -}}
{{- else -}}
{{- if not $s.secretKey -}}
{{- fail "secret.secretKey is required (at least 32 random characters), or name a Secret in secret.existingSecret" -}}
{{- end -}}
{{- if not $s.databaseUrl -}}
{{- fail "secret.databaseUrl is required (postgresql+psycopg://USER:PASSWORD@HOST:5432/DB), or name a Secret in secret.existingSecret" -}}
{{- end -}}
{{- end -}}
{{- if eq $s.keys.secretKey $s.keys.databaseUrl -}}
{{- fail "secret.keys.secretKey and secret.keys.databaseUrl must differ" -}}
{{- end -}}
{{- $c := .Values.config -}}
{{- if lt (float64 $c.jobStaleAfterS) (mulf 2 (float64 $c.jobHeartbeatS)) -}}
{{- fail "config.jobStaleAfterS must be at least twice config.jobHeartbeatS" -}}
{{- end -}}
{{- range $part := list "web" "worker" -}}
{{- $as := (index $.Values $part).autoscaling -}}
{{- if and $as.enabled (gt (int $as.minReplicas) (int $as.maxReplicas)) -}}
{{- fail (printf "%s.autoscaling.minReplicas must not exceed %s.autoscaling.maxReplicas" $part $part) -}}
{{- end -}}
{{- end -}}
{{- end -}}
