"""Known fields of the built-in kinds' most used structures, for unknown-field
detection (fieldValidation). Each entry lists a struct's JSON fields; `f:T`
nests into struct T, `f:[T` into a list of T; a bare `f` accepts any value.
Structures not listed here accept anything below them."""

_SPEC = {
    "ObjectMeta": "name generateName namespace selfLink uid resourceVersion generation creationTimestamp "
                  "deletionTimestamp deletionGracePeriodSeconds labels annotations ownerReferences:[OwnerReference "
                  "finalizers managedFields",
    "OwnerReference": "apiVersion kind name uid controller blockOwnerDeletion",
    "LabelSelector": "matchLabels matchExpressions:[LabelSelectorRequirement",
    "LabelSelectorRequirement": "key operator values",
    "PodTemplateSpec": "metadata:ObjectMeta spec:PodSpec",
    "PodSpec": "volumes:[Volume initContainers:[Container containers:[Container ephemeralContainers restartPolicy "
               "terminationGracePeriodSeconds activeDeadlineSeconds dnsPolicy nodeSelector serviceAccountName "
               "serviceAccount automountServiceAccountToken nodeName hostNetwork hostPID hostIPC "
               "shareProcessNamespace securityContext:PodSecurityContext imagePullSecrets:[LocalObjectReference "
               "hostname subdomain affinity:Affinity schedulerName tolerations:[Toleration hostAliases:[HostAlias "
               "priorityClassName priority dnsConfig readinessGates runtimeClassName enableServiceLinks "
               "preemptionPolicy overhead topologySpreadConstraints:[TopologySpreadConstraint setHostnameAsFQDN os "
               "hostUsers schedulingGates resourceClaims resources:ResourceRequirements hostnameOverride",
    "Container": "name image command args workingDir ports:[ContainerPort envFrom:[EnvFromSource env:[EnvVar "
                 "resources:ResourceRequirements resizePolicy restartPolicy restartPolicyRules "
                 "volumeMounts:[VolumeMount volumeDevices livenessProbe:Probe readinessProbe:Probe startupProbe:Probe "
                 "lifecycle:Lifecycle terminationMessagePath terminationMessagePolicy imagePullPolicy "
                 "securityContext:SecurityContext stdin stdinOnce tty",
    "ContainerPort": "name hostPort containerPort protocol hostIP",
    "EnvVar": "name value valueFrom:EnvVarSource",
    "EnvVarSource": "fieldRef:ObjectFieldSelector resourceFieldRef:ResourceFieldSelector "
                    "configMapKeyRef:KeySelector secretKeyRef:KeySelector fileKeyRef",
    "EnvFromSource": "prefix configMapRef:EnvSource secretRef:EnvSource",
    "EnvSource": "name optional",
    "KeySelector": "name key optional",
    "ObjectFieldSelector": "apiVersion fieldPath",
    "ResourceFieldSelector": "containerName resource divisor",
    "VolumeMount": "name readOnly recursiveReadOnly mountPath subPath mountPropagation subPathExpr bindMountOptions",
    "Volume": "name hostPath:HostPathVolumeSource emptyDir:EmptyDirVolumeSource gcePersistentDisk "
              "awsElasticBlockStore gitRepo secret:SecretVolumeSource nfs iscsi glusterfs "
              "persistentVolumeClaim:PersistentVolumeClaimVolumeSource rbd flexVolume cinder cephfs flocker "
              "downwardAPI:DownwardAPIVolumeSource fc azureFile configMap:ConfigMapVolumeSource vsphereVolume "
              "quobyte azureDisk photonPersistentDisk projected:ProjectedVolumeSource portworxVolume scaleIO "
              "storageos csi ephemeral image",
    "HostPathVolumeSource": "path type",
    "EmptyDirVolumeSource": "medium sizeLimit mode",
    "SecretVolumeSource": "secretName items:[KeyToPath defaultMode optional defaultUser",
    "ConfigMapVolumeSource": "name items:[KeyToPath defaultMode optional defaultUser",
    "KeyToPath": "key path mode user",
    "PersistentVolumeClaimVolumeSource": "claimName readOnly",
    "DownwardAPIVolumeSource": "items:[DownwardAPIVolumeFile defaultMode defaultUser",
    "DownwardAPIVolumeFile": "path fieldRef:ObjectFieldSelector resourceFieldRef:ResourceFieldSelector mode user",
    "ProjectedVolumeSource": "sources:[VolumeProjection defaultMode defaultUser",
    "VolumeProjection": "secret:Projection downwardAPI configMap:Projection serviceAccountToken "
                        "clusterTrustBundle podCertificate",
    "Projection": "name items:[KeyToPath optional",
    "ResourceRequirements": "limits requests claims",
    "Probe": "exec:ExecAction httpGet:HTTPGetAction tcpSocket:TCPSocketAction grpc:GRPCAction initialDelaySeconds "
             "timeoutSeconds periodSeconds successThreshold failureThreshold terminationGracePeriodSeconds",
    "Lifecycle": "postStart:LifecycleHandler preStop:LifecycleHandler stopSignal",
    "LifecycleHandler": "exec:ExecAction httpGet:HTTPGetAction tcpSocket:TCPSocketAction sleep",
    "ExecAction": "command",
    "HTTPGetAction": "path port host scheme httpHeaders protocol",
    "TCPSocketAction": "port host",
    "GRPCAction": "port service mode",
    "SecurityContext": "capabilities:Capabilities privileged seLinuxOptions windowsOptions runAsUser runAsGroup "
                       "runAsNonRoot readOnlyRootFilesystem allowPrivilegeEscalation procMount "
                       "seccompProfile:SeccompProfile appArmorProfile",
    "PodSecurityContext": "seLinuxOptions windowsOptions runAsUser runAsGroup runAsNonRoot supplementalGroups "
                          "supplementalGroupsPolicy fsGroup sysctls fsGroupChangePolicy seccompProfile:SeccompProfile "
                          "appArmorProfile seLinuxChangePolicy",
    "Capabilities": "add drop",
    "SeccompProfile": "type localhostProfile",
    "Affinity": "nodeAffinity podAffinity podAntiAffinity",
    "Toleration": "key operator value effect tolerationSeconds",
    "HostAlias": "ip hostnames",
    "LocalObjectReference": "name",
    "TopologySpreadConstraint": "maxSkew topologyKey whenUnsatisfiable labelSelector:LabelSelector minDomains "
                                "nodeAffinityPolicy nodeTaintsPolicy matchLabelKeys",
    "PVC": "apiVersion kind metadata:ObjectMeta spec:PVCSpec status",
    "PVCSpec": "accessModes selector:LabelSelector resources:VolumeResources volumeName storageClassName "
               "volumeMode dataSource dataSourceRef volumeAttributesClassName",
    "VolumeResources": "limits requests",
    "StatefulSetSpec": "replicas selector:LabelSelector template:PodTemplateSpec volumeClaimTemplates:[PVC "
                       "serviceName podManagementPolicy updateStrategy:StatefulSetUpdateStrategy "
                       "revisionHistoryLimit minReadySeconds "
                       "persistentVolumeClaimRetentionPolicy:PVCRetentionPolicy ordinals:StatefulSetOrdinals",
    "StatefulSetUpdateStrategy": "type rollingUpdate:RollingUpdateStatefulSetStrategy",
    "RollingUpdateStatefulSetStrategy": "partition maxUnavailable",
    "PVCRetentionPolicy": "whenDeleted whenScaled",
    "StatefulSetOrdinals": "start",
    "DeploymentSpec": "replicas selector:LabelSelector template:PodTemplateSpec strategy:DeploymentStrategy "
                      "minReadySeconds revisionHistoryLimit paused progressDeadlineSeconds",
    "DeploymentStrategy": "type rollingUpdate:RollingUpdateDeployment",
    "RollingUpdateDeployment": "maxUnavailable maxSurge",
    "JobSpec": "parallelism completions activeDeadlineSeconds podFailurePolicy successPolicy backoffLimit "
               "backoffLimitPerIndex maxFailedIndexes selector:LabelSelector manualSelector template:PodTemplateSpec "
               "ttlSecondsAfterFinished completionMode suspend podReplacementPolicy managedBy",
    "CronJobSpec": "schedule timeZone startingDeadlineSeconds concurrencyPolicy suspend jobTemplate:JobTemplateSpec "
                   "successfulJobsHistoryLimit failedJobsHistoryLimit",
    "JobTemplateSpec": "metadata:ObjectMeta spec:JobSpec",
    "PodDisruptionBudgetSpec": "minAvailable selector:LabelSelector maxUnavailable unhealthyPodEvictionPolicy",
    "ServiceSpec": "ports:[ServicePort selector clusterIP clusterIPs type externalIPs sessionAffinity loadBalancerIP "
                   "loadBalancerSourceRanges externalName externalTrafficPolicy healthCheckNodePort "
                   "publishNotReadyAddresses sessionAffinityConfig ipFamilies ipFamilyPolicy "
                   "allocateLoadBalancerNodePorts loadBalancerClass internalTrafficPolicy trafficDistribution",
    "ServicePort": "name protocol appProtocol port targetPort nodePort",
    "PolicyRule": "verbs apiGroups resources resourceNames nonResourceURLs",
    "Subject": "kind apiGroup name namespace",
    "RoleRef": "apiGroup kind name",
    "LeaseSpec": "holderIdentity leaseDurationSeconds acquireTime renewTime leaseTransitions strategy "
                 "preferredHolder",
    "NamespaceSpec": "finalizers",
}

# Top level of each kind: (group, plural) -> struct description.
_KINDS = {
    ("", "pods"): "spec:PodSpec status",
    ("", "services"): "spec:ServiceSpec status",
    ("", "persistentvolumeclaims"): "spec:PVCSpec status",
    ("", "namespaces"): "spec:NamespaceSpec status",
    ("", "secrets"): "data stringData type immutable",
    ("", "configmaps"): "data binaryData immutable",
    ("", "serviceaccounts"): "secrets imagePullSecrets:[LocalObjectReference automountServiceAccountToken",
    ("apps", "statefulsets"): "spec:StatefulSetSpec status",
    ("apps", "deployments"): "spec:DeploymentSpec status",
    ("batch", "jobs"): "spec:JobSpec status",
    ("batch", "cronjobs"): "spec:CronJobSpec status",
    ("policy", "poddisruptionbudgets"): "spec:PodDisruptionBudgetSpec status",
    ("coordination.k8s.io", "leases"): "spec:LeaseSpec",
    ("rbac.authorization.k8s.io", "roles"): "rules:[PolicyRule",
    ("rbac.authorization.k8s.io", "clusterroles"): "rules:[PolicyRule aggregationRule",
    ("rbac.authorization.k8s.io", "rolebindings"): "subjects:[Subject roleRef:RoleRef",
    ("rbac.authorization.k8s.io", "clusterrolebindings"): "subjects:[Subject roleRef:RoleRef",
}


def _parse(desc):
    out = {}
    for tok in desc.split():
        name, _, typ = tok.partition(":")
        out[name] = (typ.lstrip("["), typ.startswith("[")) if typ else None
    return out


STRUCTS = {k: _parse(v) for k, v in _SPEC.items()}
KINDS = {k: _parse("apiVersion kind metadata:ObjectMeta " + v) for k, v in _KINDS.items()}


def _walk(struct, value, path, unknown):
    if not isinstance(value, dict):
        return
    for k in list(value):
        if k not in struct:
            unknown.append(f"{path}.{k}" if path else k)
            del value[k]
            continue
        t = struct[k]
        if t is None or t[0] not in STRUCTS:
            continue
        sub = STRUCTS[t[0]]
        p = f"{path}.{k}" if path else k
        if t[1]:
            if isinstance(value[k], list):
                for i, item in enumerate(value[k]):
                    _walk(sub, item, f"{p}[{i}]", unknown)
        else:
            _walk(sub, value[k], p, unknown)


def prune_unknown(group, plural, obj, unknown):
    """Drop fields the kind does not have; their paths go to unknown. False if the kind is not described."""
    desc = KINDS.get((group, plural))
    if desc is None:
        return False
    _walk(desc, obj, "", unknown)
    return True
