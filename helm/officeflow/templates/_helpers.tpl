{{/* Names, labels and the pod pieces every OfficeFlow component shares. */}}

{{- define "officeflow.fullname" -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "officeflow.trafficGroup" -}}
{{- .Values.trafficGroup | default .Release.Name -}}
{{- end -}}

{{- define "officeflow.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}

{{- define "officeflow.secretName" -}}
{{- if .Values.secrets.create -}}{{ include "officeflow.fullname" . }}-secrets{{- else -}}{{ .Values.existingSecret }}{{- end -}}
{{- end -}}

{{/* Labels of every object; "component" is the one of the caller (dict "root" . "component" "scheduler"). */}}
{{- define "officeflow.labels" -}}
app.kubernetes.io/name: officeflow
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Values.image.tag | default .root.Chart.AppVersion | toString | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{- define "officeflow.selectorLabels" -}}
app.kubernetes.io/name: officeflow
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "officeflow.execApiUrl" -}}
{{- .Values.airflow.executionApiUrl | default (printf "http://%s-api-server.%s.svc.cluster.local:%v/execution/" (include "officeflow.fullname" .) .Release.Namespace .Values.apiServer.port) -}}
{{- end -}}

{{/* The workflow_insights DAG's REST API connection (JSON): the service user at this release's api-server Service. */}}
{{- define "officeflow.insightsConnection" -}}
{{- $host := printf "http://%s-api-server.%s.svc.cluster.local:%v" (include "officeflow.fullname" .) .Release.Namespace .Values.apiServer.port -}}
{{- dict "conn_type" "http" "host" $host "login" "officeflow-insights" "password" "$(OFFICEFLOW_INSIGHTS_API_PASSWORD)" | toJson -}}
{{- end -}}

{{/* The auth manager and its FAB settings file (config/webserver_config.py, copied into the image by the
     Dockerfile): airflow.cfg names them for the components and worker pods; the migration Job, which runs
     before that ConfigMap exists, gets them as environment variables. */}}
{{- define "officeflow.authManager" -}}
{{- dig "core" "auth_manager" "plugins.officeflow_auth.manager.OfficeFlowFabAuthManager" .Values.airflow.config -}}
{{- end -}}

{{- define "officeflow.fabConfigFile" -}}
{{- dig "fab" "config_file" "/opt/officeflow/config/webserver_config.py" .Values.airflow.config -}}
{{- end -}}

{{/* The environment of every OfficeFlow container (components, migration Job, worker pods). */}}
{{- define "officeflow.envFrom" -}}
- configMapRef:
    name: {{ include "officeflow.fullname" . }}-env
- secretRef:
    name: {{ include "officeflow.secretName" . }}
{{- end -}}

{{- define "officeflow.configVolumeMounts" -}}
- name: airflow-config
  mountPath: /opt/airflow/airflow.cfg
  subPath: airflow.cfg
  readOnly: true
- name: tmp
  mountPath: /tmp
- name: logs
  mountPath: /opt/airflow/logs
- name: home
  mountPath: /opt/airflow/officeflow
{{- end -}}

{{- define "officeflow.configVolumes" -}}
- name: airflow-config
  configMap:
    name: {{ include "officeflow.fullname" . }}-airflow-config
- name: tmp
  emptyDir: {}
- name: logs
  emptyDir: {}
- name: home
  emptyDir: {}
{{- end -}}

{{- define "officeflow.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 50000
runAsGroup: 0
fsGroup: 0
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "officeflow.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* One long-running component: a Deployment (dict "root" . "component" NAME "values" VALUES "args" LIST "serviceAccount" NAME;
     optional: "command", "probes", "ports", "env", "podAnnotations", "extraMounts", "extraVolumes"). VALUES without
     "replicas" (the edge gateway's): no spec.replicas, its HorizontalPodAutoscaler owns the count. */}}
{{- define "officeflow.deployment" -}}
{{- $root := .root -}}
{{- $values := .values -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "officeflow.fullname" $root }}-{{ .component }}
  labels:
    {{- include "officeflow.labels" . | nindent 4 }}
spec:
  {{- if hasKey $values "replicas" }}
  replicas: {{ $values.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 0, maxSurge: 1}
  selector:
    matchLabels:
      {{- include "officeflow.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "officeflow.labels" . | nindent 8 }}
        officeflow.io/traffic-group: {{ include "officeflow.trafficGroup" $root }}
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/configmaps.yaml") $root | sha256sum }}
        {{- with .podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ .serviceAccount }}
      automountServiceAccountToken: {{ .automountToken | default false }}
      securityContext:
        {{- include "officeflow.podSecurityContext" $root | nindent 8 }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      terminationGracePeriodSeconds: {{ $values.terminationGracePeriodSeconds | default 60 }}
      containers:
        - name: {{ .component }}
          image: {{ include "officeflow.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          {{- with .command }}
          command:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          args:
            {{- toYaml .args | nindent 12 }}
          envFrom:
            {{- include "officeflow.envFrom" $root | nindent 12 }}
          {{- with .env }}
          env:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with .ports }}
          ports:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with .probes }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
          resources:
            {{- toYaml $values.resources | nindent 12 }}
          securityContext:
            {{- include "officeflow.containerSecurityContext" $root | nindent 12 }}
          volumeMounts:
            {{- include "officeflow.configVolumeMounts" $root | nindent 12 }}
            {{- with .extraMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        {{- include "officeflow.configVolumes" $root | nindent 8 }}
        {{- with .extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{- define "officeflow.pdb" -}}
{{- if and .values.pdb.enabled (gt (int .values.replicas) 1) }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "officeflow.fullname" .root }}-{{ .component }}
  labels:
    {{- include "officeflow.labels" . | nindent 4 }}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      {{- include "officeflow.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}


{{/* The probes of a component serving OfficeFlow's health routes on its port `http` (the api-server, the edge
     gateway), as YAML (fromYaml it): started and alive while /officeflow/health/live answers, ready while the
     required dependencies of /officeflow/health/ready are. */}}
{{- define "officeflow.healthProbes" -}}
startupProbe:
  httpGet: {path: /officeflow/health/live, port: http}
  periodSeconds: 5
  failureThreshold: 60
livenessProbe:
  httpGet: {path: /officeflow/health/live, port: http}
  periodSeconds: 15
  timeoutSeconds: 5
  failureThreshold: 4
readinessProbe:
  httpGet: {path: /officeflow/health/ready, port: http}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
{{- end -}}

{{/* The Service in front of a component's port `http` (dict "root" . "component" NAME "type" TYPE "port" PORT): its
     pods of every release of the traffic group (a canary release joins the stable one's). */}}
{{- define "officeflow.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "officeflow.fullname" .root }}-{{ .component }}
  labels:
    {{- include "officeflow.labels" . | nindent 4 }}
spec:
  type: {{ .type }}
  selector:
    app.kubernetes.io/name: officeflow
    app.kubernetes.io/component: {{ .component }}
    officeflow.io/traffic-group: {{ include "officeflow.trafficGroup" .root }}
  ports:
    - name: http
      port: {{ .port }}
      targetPort: http
{{- end -}}

{{/* A component's HorizontalPodAutoscaler on CPU (dict "root" . "component" NAME "hpa" {minReplicas, maxReplicas,
     targetCPUUtilizationPercentage}), scaling its Deployment. */}}
{{- define "officeflow.hpa" -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "officeflow.fullname" .root }}-{{ .component }}
  labels:
    {{- include "officeflow.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "officeflow.fullname" .root }}-{{ .component }}
  minReplicas: {{ .hpa.minReplicas }}
  maxReplicas: {{ .hpa.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {type: Utilization, averageUtilization: {{ .hpa.targetCPUUtilizationPercentage }}}
{{- end -}}
