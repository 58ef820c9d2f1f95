{{/* Name of RBAC objects and the ServiceAccount: the release name, or <release>-kata-lifecycle-manager. */}}
{{- define "klm.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "klm.namespace" -}}
{{- .Values.argoNamespace | default .Release.Namespace -}}
{{- end -}}

{{- define "klm.serviceAccountName" -}}
{{- include "klm.fullname" . -}}
{{- end -}}

{{- define "klm.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* repository:tag, or repository@sha256:... when the tag is a digest. */}}
{{- define "klm.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion | toString -}}
{{- if hasPrefix "sha256:" $tag -}}
{{- printf "%s@%s" .Values.image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The verification Pod YAML; rendering fails without it. */}}
{{- define "klm.verificationPod" -}}
{{- required "defaults.verificationPod is required: the chart refuses to install without a verification pod, so every upgraded node is verified. Give it with --set-file defaults.verificationPod=./verification-pod.yaml (kata-lcm install-workflow --verification-pod ./verification-pod.yaml does this)" .Values.defaults.verificationPod -}}
{{- end -}}

{{/*
The part every step container shares: the kata-lcm image (its entrypoint is not used: each step
names `kata-lcm` explicitly), no writes outside /tmp (helm's caches and values files live there),
non-root, nothing installed at run time.
*/}}
{{- define "klm.container" -}}
image: {{ include "klm.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
env:
  - name: HOME
    value: /tmp
  - name: HELM_CACHE_HOME
    value: /tmp/helm/cache
  - name: HELM_CONFIG_HOME
    value: /tmp/helm/config
  - name: HELM_DATA_HOME
    value: /tmp/helm/data
  # One plain timestamped line per event in the Argo logs.
  - name: CI
    value: "true"
  - name: NO_COLOR
    value: "1"
volumeMounts:
  - name: tmp
    mountPath: /tmp
resources:
  {{- toYaml .Values.resources | nindent 2 }}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  capabilities:
    drop: ["ALL"]
{{- end -}}

{{/* The flags naming the kata-deploy release, from the workflow parameters. */}}
{{- define "klm.releaseArgs" -}}
- {{`"--helm-release={{workflow.parameters.helm-release}}"`}}
- {{`"--helm-namespace={{workflow.parameters.helm-namespace}}"`}}
{{- end -}}

{{/*
Pod-level errors only (evicted, node lost, executor failure): the steps are safe to rerun. A step
that exited non-zero is not retried: that is an outcome (e.g. nodes rolled back), not a glitch.
*/}}
{{- define "klm.retryOnError" -}}
limit: "2"
# A lost pod, never a step that failed on its own: Argo's Error (evicted, lost node), or the step
# killed by a signal (137/143: its pod deleted or preempted mid-step), or -1: a Failed pod whose
# executor never reported the step's exit code (the pod deleted before its wait container could;
# Argo v3.7's retry scope gives -1 then). Every step is safe to rerun.
retryPolicy: Always
expression: "lastRetry.status == 'Error' || (lastRetry.status == 'Failed' && asInt(lastRetry.exitCode) in [-1, 137, 143])"
{{- end -}}

{{/*
The labels every custom metric of the template carries: the kata-deploy release it drives.
*/}}
{{- define "klm.metricLabels" -}}
- key: release
  value: {{`"{{workflow.parameters.helm-namespace}}/{{workflow.parameters.helm-release}}"`}}
{{- end -}}
