{{/*
Job spec of one training run (shared by the CronJob and the run-once Job).
Usage: include "archplan.trainingJobSpec" (dict "root" $ "job" $job)

Spot and resume: a checkpointable run on spot capacity is expected to be interrupted. The
EC2 interruption notice gives ~2 minutes: the pod gets SIGTERM and
terminationGracePeriodSeconds (120 s by default on spot) to write a checkpoint to
ARCHPLAN_CHECKPOINT_URI. The Job controller then starts a new pod (backoffLimit leaves
room for several interruptions) and the trainer must resume from the newest checkpoint
under that URI (ARCHPLAN_RESUME=latest). activeDeadlineSeconds is the run's deadline.
*/}}
{{- define "archplan.trainingJobSpec" -}}
{{- $root := .root -}}
{{- $job := .job -}}
{{- $labels := dict "root" $root "component" "training" "workload" $job.name -}}
backoffLimit: {{ $job.backoffLimit | int }}
activeDeadlineSeconds: {{ $job.activeDeadlineSeconds | int }}
template:
  metadata:
    labels:
      {{- include "archplan.componentLabels" $labels | nindent 6 }}
    annotations:
      {{- include "archplan.annotations" $root | nindent 6 }}
  spec:
    serviceAccountName: {{ $root.Values.serviceAccounts.training.name }}
    automountServiceAccountToken: false
    enableServiceLinks: false
    restartPolicy: OnFailure
    terminationGracePeriodSeconds: {{ $job.terminationGracePeriodSeconds | int }}
    securityContext:
      {{- include "archplan.podSecurityContext" $root | nindent 6 }}
    {{- include "archplan.gpuScheduling" (dict "capacityType" $job.capacityType "nodeSelector" $job.nodeSelector) | nindent 4 }}
    containers:
      - name: train
        image: {{ include "archplan.image" $job.image | quote }}
        imagePullPolicy: Always
        {{- with $job.command }}
        command:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        {{- with $job.args }}
        args:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        env:
          - name: HOME
            value: /tmp
          - name: XDG_CACHE_HOME
            value: /tmp/.cache
          - name: ARCHPLAN_JOB_NAME
            value: {{ $job.name | quote }}
          - name: ARCHPLAN_CAPACITY_TYPE
            value: {{ $job.capacityType | quote }}
          - name: ARCHPLAN_CHECKPOINTABLE
            value: {{ $job.checkpointable | toString | quote }}
          - name: ARCHPLAN_RESUME
            value: {{ ternary "latest" "never" $job.checkpointable | quote }}
          - name: ARCHPLAN_CHECKPOINT_URI
            value: {{ ternary (printf "%s/%s/" ($root.Values.storage.checkpointUri | trimSuffix "/") $job.name) "" (ne $root.Values.storage.checkpointUri "") | quote }}
          {{- with $job.env }}{{ include "archplan.env" . | trim | nindent 10 }}{{ end }}
        resources:
          {{- include "archplan.resources" (dict "resources" $job.resources "gpus" $job.gpus) | nindent 10 }}
        securityContext:
          {{- include "archplan.containerSecurityContext" $root | nindent 10 }}
        volumeMounts:
          - name: tmp
            mountPath: /tmp
          - name: shm
            mountPath: /dev/shm
    volumes:
      - name: tmp
        emptyDir:
          sizeLimit: {{ $job.tmpSizeLimit | quote }}
      - name: shm
        emptyDir:
          medium: Memory
          sizeLimit: {{ $job.shmSizeLimit | quote }}
{{- end -}}
