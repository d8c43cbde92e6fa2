{{/* Labels every object of the release carries; the component is added per object. */}}
{{- define "clusterhub.labels" -}}
app.kubernetes.io/name: clusterhub
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* Selector of one component's pods: "clusterhub.selector" (list . "hub"). */}}
{{- define "clusterhub.selector" -}}
app.kubernetes.io/name: clusterhub
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "clusterhub.hubImage" -}}
{{ printf "%s:%s" .Values.hub.image.name .Values.hub.image.tag }}
{{- end }}

{{/* PodSecurity `restricted`, for every pod of the chart. */}}
{{- define "clusterhub.podSecurity" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end }}
{{- define "clusterhub.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end }}

{{/* The hub's configuration file: hub.config with what the chart wires on top. */}}
{{- define "clusterhub.hubConfig" -}}
{{- $ns := .Release.Namespace -}}
{{- $wired := dict
  "hub" (dict "bind" "0.0.0.0" "hubPort" 8081 "stateDir" "/srv/clusterhub/state")
  "proxy" (dict "mode" "external" "apiUrl" (printf "http://proxy-api.%s.svc:8001" $ns))
  "spawn" (dict "backend" "kubernetes")
  "kubernetes" (dict
    "image" (printf "%s:%s" .Values.cluster.image.name .Values.cluster.image.tag)
    "imagePullPolicy" .Values.cluster.image.pullPolicy
    "schedulerResources" .Values.cluster.scheduler.resources
    "workerResources" .Values.cluster.worker.resources
    "proxyNamespace" $ns
    "proxyPodSelector" (dict "app.kubernetes.io/name" "clusterhub" "app.kubernetes.io/instance" .Release.Name "app.kubernetes.io/component" "proxy")) -}}
{{- mustMergeOverwrite (deepCopy .Values.hub.config) $wired | toYaml }}
{{- end }}

{{/*
The generated secrets: a value wins, then what the Secret already holds (kept across
upgrades), then a new random one. Returns YAML of {cookieSecret, proxyToken}.
*/}}
{{- define "clusterhub.secrets" -}}
{{- $old := (lookup "v1" "Secret" .Release.Namespace "hub-secret").data | default dict -}}
{{- $cookie := .Values.hub.cookieSecret | default (get $old "cookieSecret" | b64dec) | default (randAlphaNum 64) -}}
{{- $token := .Values.proxy.secretToken | default (get $old "proxyToken" | b64dec) | default (randAlphaNum 64) -}}
cookieSecret: {{ $cookie | quote }}
proxyToken: {{ $token | quote }}
{{- end }}

{{/* The hub's config Secret is mounted here; CLUSTERHUB_CONFIG names the file. */}}
{{- define "clusterhub.configPath" -}}/etc/clusterhub/clusterhub.yaml{{- end }}
