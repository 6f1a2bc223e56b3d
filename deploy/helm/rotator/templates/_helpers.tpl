{{/* Names: "rotator" for a release called rotator, as in deploy/ (kustomize). */}}
{{- define "rotator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rotator.fullname" -}}
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

{{- define "rotator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rotator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "rotator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "rotator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: rotator
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "rotator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rotator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: {{ .Values.mode }}
{{- end -}}

{{/* Pod labels: the common ones plus the component the selectors use. */}}
{{- define "rotator.podLabels" -}}
{{ include "rotator.labels" . }}
app.kubernetes.io/component: {{ .Values.mode }}
{{- with .Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "rotator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Where the secret files are mounted; config refers to them by path. */}}
{{- define "rotator.secretsDir" -}}/var/run/secrets/rotator{{- end -}}

{{/*
The rotator.yaml the chart ships: .Values.config plus what the chart owns. Checks that
need the config (issuer names, HTTP-01 with replicas) fail the render with a message
naming the value, before anything reaches the cluster.
*/}}
{{- define "rotator.config" -}}
{{- $fullname := include "rotator.fullname" . -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $renewal := default (dict) (get $cfg "renewal") -}}
{{- $_ := set $renewal "state_namespace" .Release.Namespace -}}
{{- $_ := set $renewal "state_configmap" (printf "%s-state" $fullname) -}}
{{- $_ := set $cfg "renewal" $renewal -}}
{{- $daemon := default (dict) (get $cfg "daemon") -}}
{{- $_ := set $daemon "listen" (printf "0.0.0.0:%d" (int .Values.metrics.port)) -}}
{{- $_ := set $daemon "leader_election" .Values.leaderElection.enabled -}}
{{- $_ := set $daemon "lease" (merge (default (dict) (get $daemon "lease")) (dict "name" (printf "%s-leader" $fullname) "namespace" .Release.Namespace)) -}}
{{- if eq .Values.mode "daemon" -}}
{{- if .Values.schedule -}}
{{- if hasPrefix "@" .Values.schedule -}}
{{- fail (printf "schedule %q: daemon mode takes a 5-field crontab (e.g. \"17 * * * *\"), not @-shorthands" .Values.schedule) -}}
{{- end -}}
{{- if hasKey $daemon "interval" -}}
{{- fail "config.daemon.interval is ignored while schedule is set: set schedule: \"\" to run on the interval" -}}
{{- end -}}
{{- $_ := set $daemon "cron" .Values.schedule -}}
{{- end -}}
{{- if and .Values.http01.enabled (eq (int .Values.http01.port) (int .Values.metrics.port)) -}}
{{- fail (printf "http01.port and metrics.port are both %d: the responder and /metrics need their own ports" (int .Values.metrics.port)) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $cfg "daemon" $daemon -}}
{{- $issuers := default (dict) (get $cfg "issuers") -}}
{{- $dir := include "rotator.secretsDir" . -}}
{{- range $name, $refs := .Values.issuerSecrets -}}
{{- $issuer := get $issuers $name -}}
{{- if not $issuer -}}
{{- fail (printf "issuerSecrets.%s: no issuer %q in config.issuers" $name $name) -}}
{{- end -}}
{{- if $refs.tsig -}}
{{- $dns01 := get $issuer "dns01" -}}
{{- if not $dns01 -}}
{{- fail (printf "issuerSecrets.%s.tsig: config.issuers.%s has no dns01 section" $name $name) -}}
{{- end -}}
{{- if hasKey $dns01 "tsig_secret" -}}
{{- fail (printf "config.issuers.%s.dns01.tsig_secret and issuerSecrets.%s.tsig both set: keep one" $name $name) -}}
{{- end -}}
{{- $_ := set $dns01 "tsig_secret" (dict "file" (printf "%s/issuers/%s/tsig" $dir $name)) -}}
{{- end -}}
{{- if $refs.eab -}}
{{- if hasKey $issuer "eab_hmac" -}}
{{- fail (printf "config.issuers.%s.eab_hmac and issuerSecrets.%s.eab both set: keep one" $name $name) -}}
{{- end -}}
{{- $_ := set $issuer "eab_hmac" (dict "file" (printf "%s/issuers/%s/eab" $dir $name)) -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.mode "daemon") (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "replicas > 1 needs leaderElection.enabled: without a Lease every replica would renew and write the same Secrets" -}}
{{- end -}}
{{- range $name, $issuer := $issuers -}}
{{- if and (hasKey $issuer "dns01") (not (get (get $issuer "dns01") "tsig_secret")) -}}
{{- fail (printf "config.issuers.%s.dns01 has no TSIG key: set issuerSecrets.%s.tsig (a Secret mounted as a file) or dns01.tsig_secret" $name $name) -}}
{{- end -}}
{{- if eq (toString (get $issuer "solver")) "http01" -}}
{{- if not $.Values.http01.enabled -}}
{{- fail (printf "config.issuers.%s uses HTTP-01: set http01.enabled: true so the responder's port is exposed" $name) -}}
{{- end -}}
{{- if and (eq $.Values.mode "daemon") (gt (int $.Values.replicas) 1) -}}
{{- fail (printf "config.issuers.%s uses HTTP-01: in daemon mode set replicas: 1 (only the Lease holder runs the responder, and a Service would spread the CA's requests over every replica), or use DNS-01" $name) -}}
{{- end -}}
{{- /* The responder listens on the chart's port, behind the chart's Service. */ -}}
{{- $h := default (dict) (get $issuer "http01") -}}
{{- $_ := set $h "listen" (printf "0.0.0.0:%d" (int $.Values.http01.port)) -}}
{{- $_ := set $h "service_port" (int $.Values.http01.port) -}}
{{- if not (get $h "service_host") -}}
{{- $_ := set $h "service_host" (printf "%s.%s.svc.cluster.local" $fullname $.Release.Namespace) -}}
{{- end -}}
{{- $_ := set $issuer "http01" $h -}}
{{- end -}}
{{- end -}}
{{- $_ := set $cfg "issuers" $issuers -}}
{{- if .Values.pagerduty.enabled -}}
{{- $pd := deepCopy (default (dict) .Values.pagerduty.settings) -}}
{{- $_ := set $pd "routing_key" (dict "file" (printf "%s/pagerduty/routing-key" $dir)) -}}
{{- $_ := set $cfg "pagerduty" $pd -}}
{{- end -}}
{{- if and .Values.rbac.create (not .Values.rbac.gatewayNamespaces) -}}
{{- fail "rbac.gatewayNamespaces is empty: rotator could read no Secret (list the namespaces where gateway workloads run)" -}}
{{- end -}}
{{- if and .Values.prometheusRule.enabled (eq .Values.mode "cronjob") (not .Values.cronjob.pushgatewayUrl) -}}
{{- fail "prometheusRule.enabled in cronjob mode needs cronjob.pushgatewayUrl: a Job's metrics reach Prometheus only through a Pushgateway, and RotatorNotRunning would fire for ever" -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The projected volume of every Secret the config refers to by file. */}}
{{- define "rotator.secretSources" -}}
{{- range $name, $refs := .Values.issuerSecrets }}
{{- if $refs.tsig }}
- secret:
    name: {{ $refs.tsig.name | quote }}
    items:
      - key: {{ $refs.tsig.key | quote }}
        path: issuers/{{ $name }}/tsig
{{- end }}
{{- if $refs.eab }}
- secret:
    name: {{ $refs.eab.name | quote }}
    items:
      - key: {{ $refs.eab.key | quote }}
        path: issuers/{{ $name }}/eab
{{- end }}
{{- end }}
{{- if .Values.pagerduty.enabled }}
- secret:
    name: {{ .Values.pagerduty.routingKeySecret.name | quote }}
    items:
      - key: {{ .Values.pagerduty.routingKeySecret.key | quote }}
        path: pagerduty/routing-key
{{- end }}
{{- end -}}

{{/* The pod template shared by the CronJob and the Deployment. */}}
{{- define "rotator.podSpec" -}}
serviceAccountName: {{ include "rotator.serviceAccountName" . }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
containers:
  - name: rotator
    image: {{ include "rotator.image" . }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    args:
      {{- if eq .Values.mode "daemon" }}
      - daemon
      {{- else }}
      - check
      # job exit codes: the Job fails only when a renewal failed or rotator could not run.
      - --exit-codes
      - job
      # the Job's log keeps the pass's progress lines (a terminal gets warnings only)
      - --log-level
      - info
      {{- with .Values.cronjob.pushgatewayUrl }}
      - --pushgateway
      - {{ . | quote }}
      {{- end }}
      {{- end }}
      {{- with .Values.extraArgs }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    env:
      - name: ROTATOR_CONFIG
        value: /etc/rotator/rotator.yaml
      - name: PYTHONDONTWRITEBYTECODE
        value: "1"
      - name: POD_NAME
        valueFrom:
          fieldRef:
            fieldPath: metadata.name
      {{- with .Values.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- if eq .Values.mode "daemon" }}
    ports:
      - name: http
        containerPort: {{ .Values.metrics.port }}
      {{- if .Values.http01.enabled }}
      - name: http01
        containerPort: {{ .Values.http01.port }}
      {{- end }}
    livenessProbe:
      httpGet: {path: /healthz, port: http}
      periodSeconds: 20
    readinessProbe:
      httpGet: {path: /readyz, port: http}
      periodSeconds: 20
    {{- else if .Values.http01.enabled }}
    ports:
      - name: http01
        containerPort: {{ .Values.http01.port }}
    {{- end }}
    resources:
      {{- toYaml .Values.resources | nindent 6 }}
    securityContext:
      {{- toYaml .Values.securityContext | nindent 6 }}
    volumeMounts:
      - name: config
        mountPath: /etc/rotator
        readOnly: true
      - name: tmp
        mountPath: /tmp
      {{- if include "rotator.secretSources" . }}
      - name: secrets
        mountPath: {{ include "rotator.secretsDir" . }}
        readOnly: true
      {{- end }}
      {{- with .Values.extraVolumeMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
volumes:
  - name: config
    configMap:
      name: {{ include "rotator.fullname" . }}-config
  - name: tmp
    emptyDir:
      sizeLimit: 16Mi
  {{- with include "rotator.secretSources" . }}
  - name: secrets
    projected:
      # World-readable inside this single-container pod: with 0440 the files would need
      # fsGroup to be readable by uid 10001, and platforms that assign uids drop fsGroup.
      defaultMode: 0444
      sources:
        {{- . | trim | nindent 8 }}
  {{- end }}
  {{- with .Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
