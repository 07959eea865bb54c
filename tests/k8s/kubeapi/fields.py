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


# ---- value types ----
# Go types of scalar fields, so that a value of the wrong JSON type is refused the way
# encoding/json refuses it (`value: 1` for an env var, `containerPort: "80"`), whatever
# fieldValidation says. Struct names are the Go ones, as in the real message.

_I32, _I64, _S, _B, _IS = "int32", "int64", "string", "bool", "intstr.IntOrString"
_MSS, _SS = "map[string]string", "[]string"
TYPES = {
    "ObjectMeta": {"name": _S, "generateName": _S, "namespace": _S, "labels": _MSS, "annotations": _MSS,
                   "finalizers": _SS},
    "PodSpec": {"restartPolicy": _S, "terminationGracePeriodSeconds": _I64, "activeDeadlineSeconds": _I64,
                "dnsPolicy": _S, "nodeSelector": _MSS, "serviceAccountName": _S, "serviceAccount": _S,
                "automountServiceAccountToken": _B, "nodeName": _S, "hostNetwork": _B, "hostPID": _B, "hostIPC": _B,
                "shareProcessNamespace": _B, "hostname": _S, "subdomain": _S, "schedulerName": _S,
                "priorityClassName": _S, "enableServiceLinks": _B},
    "Container": {"name": _S, "image": _S, "command": _SS, "args": _SS, "workingDir": _S,
                  "terminationMessagePath": _S, "terminationMessagePolicy": _S, "imagePullPolicy": _S,
                  "stdin": _B, "tty": _B},
    "ContainerPort": {"name": _S, "hostPort": _I32, "containerPort": _I32, "protocol": _S, "hostIP": _S},
    "EnvVar": {"name": _S, "value": _S},
    "VolumeMount": {"name": _S, "readOnly": _B, "mountPath": _S, "subPath": _S},
    "Volume": {"name": _S},
    "SecretVolumeSource": {"secretName": _S, "defaultMode": _I32, "optional": _B},
    "ConfigMapVolumeSource": {"name": _S, "defaultMode": _I32, "optional": _B},
    "KeyToPath": {"key": _S, "path": _S, "mode": _I32},
    "PersistentVolumeClaimVolumeSource": {"claimName": _S, "readOnly": _B},
    "Probe": {"initialDelaySeconds": _I32, "timeoutSeconds": _I32, "periodSeconds": _I32,
              "successThreshold": _I32, "failureThreshold": _I32, "terminationGracePeriodSeconds": _I64},
    "ExecAction": {"command": _SS},
    "HTTPGetAction": {"path": _S, "port": _IS, "host": _S, "scheme": _S},
    "TCPSocketAction": {"port": _IS, "host": _S},
    "SecurityContext": {"privileged": _B, "runAsUser": _I64, "runAsGroup": _I64, "runAsNonRoot": _B,
                        "readOnlyRootFilesystem": _B, "allowPrivilegeEscalation": _B},
    "PodSecurityContext": {"runAsUser": _I64, "runAsGroup": _I64, "runAsNonRoot": _B, "fsGroup": _I64},
    "Toleration": {"key": _S, "operator": _S, "value": _S, "effect": _S, "tolerationSeconds": _I64},
    "LabelSelector": {"matchLabels": _MSS},
    "LabelSelectorRequirement": {"key": _S, "operator": _S, "values": _SS},
    "StatefulSetSpec": {"replicas": _I32, "serviceName": _S, "podManagementPolicy": _S,
                        "revisionHistoryLimit": _I32, "minReadySeconds": _I32},
    "RollingUpdateStatefulSetStrategy": {"partition": _I32, "maxUnavailable": _IS},
    "DeploymentSpec": {"replicas": _I32, "minReadySeconds": _I32, "revisionHistoryLimit": _I32, "paused": _B,
                       "progressDeadlineSeconds": _I32},
    "RollingUpdateDeployment": {"maxUnavailable": _IS, "maxSurge": _IS},
    "JobSpec": {"parallelism": _I32, "completions": _I32, "activeDeadlineSeconds": _I64, "backoffLimit": _I32,
                "ttlSecondsAfterFinished": _I32, "suspend": _B},
    "CronJobSpec": {"schedule": _S, "timeZone": _S, "startingDeadlineSeconds": _I64, "concurrencyPolicy": _S,
                    "suspend": _B, "successfulJobsHistoryLimit": _I32, "failedJobsHistoryLimit": _I32},
    "PodDisruptionBudgetSpec": {"minAvailable": _IS, "maxUnavailable": _IS},
    "ServiceSpec": {"selector": _MSS, "clusterIP": _S, "type": _S, "sessionAffinity": _S, "externalName": _S,
                    "publishNotReadyAddresses": _B},
    "ServicePort": {"name": _S, "protocol": _S, "port": _I32, "targetPort": _IS, "nodePort": _I32},
    "PolicyRule": {"verbs": _SS, "apiGroups": _SS, "resources": _SS, "resourceNames": _SS, "nonResourceURLs": _SS},
    "Subject": {"kind": _S, "apiGroup": _S, "name": _S, "namespace": _S},
    "RoleRef": {"apiGroup": _S, "kind": _S, "name": _S},
    "LeaseSpec": {"holderIdentity": _S, "leaseDurationSeconds": _I32, "leaseTransitions": _I32},
    "ConfigMap": {"data": _MSS, "immutable": _B},
    "Secret": {"type": _S, "stringData": _MSS, "immutable": _B},
}


def _json_type(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, float) and not v.is_integer():
        return f"number {v}"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _complaint(v, go):
    """(JSON type found, Go type wanted) when encoding/json would refuse v for Go type go, else None."""
    if v is None:  # null is the zero value of anything
        return None
    if go in (_MSS, _SS):
        if not isinstance(v, dict if go == _MSS else list):
            return _json_type(v), go
        for x in (v.values() if isinstance(v, dict) else v):
            if x is not None and not isinstance(x, str):
                return _json_type(x), _S
        return None
    if go == _S:
        ok = isinstance(v, str)
    elif go == _B:
        ok = isinstance(v, bool)
    elif go in (_I32, _I64):
        ok = not isinstance(v, bool) and (isinstance(v, int) or (isinstance(v, float) and v.is_integer()))
    else:  # int or string
        ok = isinstance(v, (int, str)) and not isinstance(v, bool)
    return None if ok else (_json_type(v), go)


def _check(gostruct, types, value, path):
    for k, v in value.items():
        go = types.get(gostruct, {}).get(k)
        c = _complaint(v, go) if go else None
        if c:
            p = f"{path}.{k}" if path else k
            return f"json: cannot unmarshal {c[0]} into Go struct field {gostruct}.{p} of type {c[1]}"
    return None


def _types(gostruct, sname, value, path):
    if not isinstance(value, dict):
        return None
    err = _check(gostruct, TYPES, value, path)
    if err:
        return err
    for k, v in value.items():
        t = (STRUCTS.get(sname) or {}).get(k)
        if not t or t[0] not in STRUCTS:
            continue
        items = v if (t[1] and isinstance(v, list)) else [v]
        for item in items:
            err = _types(_GO_NAMES.get(t[0], t[0]), t[0], item, f"{path}.{k}")
            if err:
                return err
    return None


_GO_NAMES = {"PVC": "PersistentVolumeClaim", "PVCSpec": "PersistentVolumeClaimSpec",
             "VolumeResources": "VolumeResourceRequirements",
             "PVCRetentionPolicy": "StatefulSetPersistentVolumeClaimRetentionPolicy"}


def type_error(group, plural, kind, obj):
    """The first value of the wrong JSON type in a built-in object, as the real decoder reports it."""
    desc = KINDS.get((group, plural))
    if desc is None or not isinstance(obj, dict):
        return None
    err = _check(kind, TYPES, obj, "")
    if err:
        return err
    for k, v in obj.items():
        t = desc.get(k)
        if t and t[0] in STRUCTS:
            err = _types(_GO_NAMES.get(t[0], t[0]), t[0], v, k)
            if err:
                return err
    return None
