"""The upstream checkers catch the mistakes they exist for, and accept what we really deploy."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.upstream import checks

GATEWAY_CLASS: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "GatewayClass",
    "metadata": {"name": "envoy"},
    "spec": {
        "controllerName": "gateway.envoyproxy.io/gatewayclass-controller",
        "parametersRef": {
            "group": "gateway.envoyproxy.io",
            "kind": "EnvoyProxy",
            "name": "edge-proxy",
            "namespace": "envoy-gateway-system",
        },
    },
}

GATEWAY: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "Gateway",
    "metadata": {"name": "edge", "namespace": "envoy-gateway-system"},
    "spec": {
        "gatewayClassName": "envoy",
        "listeners": [
            {
                "name": "http",
                "protocol": "HTTP",
                "port": 80,
                "allowedRoutes": {"namespaces": {"from": "All"}},
            }
        ],
        "infrastructure": {
            "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "external"}
        },
    },
}

HTTP_ROUTE: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "comments", "namespace": "comments", "labels": {"app": "comments"}},
    "spec": {
        "parentRefs": [{"name": "edge", "namespace": "envoy-gateway-system"}],
        "hostnames": ["comments.example.com"],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [{"name": "comments", "port": 80}],
                "timeouts": {"request": "30s"},
            }
        ],
    },
}

POD_MONITOR: dict[str, Any] = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "PodMonitor",
    "metadata": {"name": "envoy-proxy", "namespace": "monitoring", "labels": {"release": "kps"}},
    "spec": {
        "selector": {
            "matchLabels": {
                "app.kubernetes.io/name": "envoy",
                "app.kubernetes.io/component": "proxy",
            }
        },
        "namespaceSelector": {"any": True},
        "podMetricsEndpoints": [{"port": "metrics", "path": "/stats/prometheus"}],
    },
}

APPLICATION_SET: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "ApplicationSet",
    "metadata": {"name": "apps", "namespace": "argocd"},
    "spec": {
        "goTemplate": True,
        "goTemplateOptions": ["missingkey=error"],
        "generators": [
            {
                "git": {
                    "repoURL": "https://github.com/example/apps.git",
                    "revision": "HEAD",
                    "directories": [{"path": "apps/*"}],
                }
            }
        ],
        "template": {
            "metadata": {"name": "{{.path.basename}}"},
            "spec": {
                "project": "default",
                "source": {
                    "repoURL": "https://github.com/example/apps.git",
                    "targetRevision": "HEAD",
                    "path": "{{.path.path}}",
                },
                "destination": {
                    "server": "https://kubernetes.default.svc",
                    "namespace": "{{.path.basename}}",
                },
                "syncPolicy": {
                    "automated": {"prune": True, "selfHeal": True},
                    "syncOptions": ["CreateNamespace=true"],
                },
            },
        },
    },
}

NLB_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-type": "external",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
}

ENVOY_PROXY: dict[str, Any] = {
    "apiVersion": "gateway.envoyproxy.io/v1alpha1",
    "kind": "EnvoyProxy",
    "metadata": {"name": "edge-proxy", "namespace": "envoy-gateway-system"},
    "spec": {
        "provider": {
            "type": "Kubernetes",
            "kubernetes": {
                "envoyService": {"annotations": NLB_ANNOTATIONS},
                "envoyDeployment": {
                    "replicas": 2,
                    "container": {"resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
                    "pod": {"nodeSelector": {"role": "system"}},
                },
                "envoyPDB": {"minAvailable": 1},
            },
        },
        "telemetry": {"metrics": {"prometheus": {"disable": False}}},
    },
}


def modified(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of obj with the dotted path (list indexes as numbers) set, or removed."""
    result = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node: Any = result
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is _REMOVE:
        del node[last]
    else:
        node[last] = value
    return result


_REMOVE = object()


# --------------------------------------------------------------------------------------------
# Helm values
# --------------------------------------------------------------------------------------------


def test_a_typo_in_a_values_key_is_reported_with_its_path() -> None:
    values = {"prometheus": {"prometheusSpec": {"retention": "10d", "retension": "10d"}}}
    assert checks.unknown_values_keys("kube-prometheus-stack", values) == [
        "prometheus.prometheusSpec.retension"
    ]


def test_an_unknown_top_level_key_is_reported() -> None:
    assert checks.unknown_values_keys("argo-cd", {"serverr": {}}) == ["serverr"]


def test_keys_below_a_free_form_map_are_accepted() -> None:
    values = {
        "podAnnotations": {"anything/goes": "yes"},
        "extraArgs": {"balance-similar-node-groups": True, "expander": "least-waste"},
        "nodeSelector": {"role": "system"},
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
    }
    assert checks.unknown_values_keys("cluster-autoscaler", values) == []


def test_a_known_list_of_objects_is_accepted() -> None:
    values = {"args": ["--kubelet-preferred-address-types=InternalIP"], "tolerations": [{}]}
    assert checks.unknown_values_keys("metrics-server", values) == []


def test_subchart_values_are_known_under_their_alias() -> None:
    values = {
        "grafana": {
            "adminPassword": "x",  # commented out in values.yaml, read by the templates
            "sidecar": {"dashboards": {"enabled": True, "folderAnnotation": "grafana_folder"}},
        },
        "kube-state-metrics": {"nodeSelector": {"role": "system"}},
        "prometheus-node-exporter": {"tolerations": [{"operator": "Exists"}]},
    }
    assert checks.unknown_values_keys("kube-prometheus-stack", values) == []
    assert checks.unknown_values_keys("kube-prometheus-stack", {"grafana": {"sidecarr": 1}}) == [
        "grafana.sidecarr"
    ]


def test_argo_cd_dotted_params_are_accepted_in_their_free_form_map() -> None:
    values = {
        "configs": {
            "params": {"server.insecure": True},
            "secret": {"argocdServerAdminPassword": "$2a$10$x"},
        }
    }
    assert checks.unknown_values_keys("argo-cd", values) == []


def test_envoy_gateway_default_proxy_is_checked_against_the_envoyproxy_crd() -> None:
    good = {"config": {"envoyGateway": {"envoyProxy": ENVOY_PROXY["spec"]}}}
    assert checks.unknown_values_keys("gateway-helm", good) == []
    bad = {
        "config": {
            "envoyGateway": {
                "envoyProxy": {
                    "provider": {"type": "Kubernetes", "kubernetes": {"envoyServce": {}}}
                }
            }
        }
    }
    assert checks.unknown_values_keys("gateway-helm", bad) == [
        "config.envoyGateway.envoyProxy.provider.kubernetes.envoyServce: unknown field"
    ]


# --------------------------------------------------------------------------------------------
# Custom resources
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [GATEWAY_CLASS, GATEWAY, HTTP_ROUTE, POD_MONITOR, APPLICATION_SET, ENVOY_PROXY],
    ids=lambda obj: obj["kind"],
)
def test_valid_custom_resources_are_accepted(obj: dict[str, Any]) -> None:
    assert checks.crd_errors(obj) == []


def test_an_unknown_field_in_a_closed_object_is_reported() -> None:
    route = modified(HTTP_ROUTE, "spec.rules.0.timeout", {"request": "30s"})
    assert checks.crd_errors(route) == ["spec.rules[0].timeout: unknown field"]


def test_a_value_outside_an_enum_is_reported() -> None:
    route = modified(HTTP_ROUTE, "spec.rules.0.matches.0.path.type", "Prefix")
    errors = checks.crd_errors(route)
    assert len(errors) == 1 and errors[0].startswith("spec.rules[0].matches[0].path.type: 'Prefix'")


def test_a_missing_required_field_is_reported() -> None:
    gateway = modified(GATEWAY, "spec.listeners.0.protocol", _REMOVE)
    assert checks.crd_errors(gateway) == ["spec.listeners[0].protocol: is required"]
    appset = modified(APPLICATION_SET, "spec.generators.0.git.revision", _REMOVE)
    assert checks.crd_errors(appset) == ["spec.generators[0].git.revision: is required"]


def test_a_wrong_type_is_reported() -> None:
    gateway = modified(GATEWAY, "spec.listeners.0.port", "80")
    assert checks.crd_errors(gateway) == [
        "spec.listeners[0].port: must be of type integer, got str"
    ]


def test_int_or_string_fields_take_both() -> None:
    for value in (1, "50%"):
        assert (
            checks.crd_errors(
                modified(ENVOY_PROXY, "spec.provider.kubernetes.envoyPDB.minAvailable", value)
            )
            == []
        )


def test_free_form_maps_in_crds_accept_any_key() -> None:
    monitor = modified(POD_MONITOR, "spec.selector.matchLabels.anything", "x")
    assert checks.crd_errors(monitor) == []


def test_unknown_kinds_and_top_level_fields_are_reported() -> None:
    assert checks.crd_errors(
        {"apiVersion": "example.com/v1", "kind": "Nope", "metadata": {"name": "x"}}
    ) == ["no CRD fixture for example.com/v1 Nope"]
    assert checks.crd_errors({**POD_MONITOR, "data": {}}) == ["data: unknown field"]
    assert checks.crd_errors(modified(POD_MONITOR, "metadata.labelz", {})) == [
        "metadata.labelz: unknown field"
    ]


# --------------------------------------------------------------------------------------------
# Fixtures themselves
# --------------------------------------------------------------------------------------------


def test_every_fixture_names_its_upstream_source() -> None:
    for path in sorted(checks.FIXTURES.rglob("*.json")):
        fixture = json.loads(path.read_text())
        assert fixture["extracted_by"] == "tests/upstream/extract.py", path
        source = fixture["source"]
        assert source["repo"].count("/") == 1, path
        assert source["ref"] and len(source["commit"]) == 40, path


def test_pinned_chart_versions() -> None:
    assert checks.pinned_chart_versions() == {
        "argo-cd": "10.1.1",
        "aws-load-balancer-controller": "3.5.0",
        "cluster-autoscaler": "9.59.0",
        "gateway-helm": "v1.9.0",
        "karpenter": "1.14.1",
        "karpenter-crd": "1.14.1",
        "kube-prometheus-stack": "88.5.3",
        "metrics-server": "3.13.1",
    }
    assert checks.chart_version("kube-prometheus-stack") == "88.5.3"


def test_the_crds_we_create_are_all_extracted() -> None:
    assert set(checks.known_custom_resources()) >= {
        ("gateway.networking.k8s.io/v1", "GatewayClass"),
        ("gateway.networking.k8s.io/v1", "Gateway"),
        ("gateway.networking.k8s.io/v1", "HTTPRoute"),
        ("gateway.envoyproxy.io/v1alpha1", "EnvoyProxy"),
        ("gateway.envoyproxy.io/v1alpha1", "ClientTrafficPolicy"),
        ("gateway.envoyproxy.io/v1alpha1", "BackendTrafficPolicy"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("monitoring.coreos.com/v1", "PodMonitor"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
        ("argoproj.io/v1alpha1", "ApplicationSet"),
        ("karpenter.sh/v1", "NodePool"),
        ("karpenter.k8s.aws/v1", "EC2NodeClass"),
    }


# The values paths FACTS.md documents for the platform, one realistic set per chart.
PLATFORM_VALUES: dict[str, dict[str, Any]] = {
    "aws-load-balancer-controller": {
        "clusterName": "demo",
        "region": "eu-west-1",
        "vpcId": "vpc-0123",
        "replicaCount": 2,
        "serviceAccount": {
            "create": True,
            "name": "aws-load-balancer-controller",
            "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/lbc"},
        },
        "nodeSelector": {"role": "system"},
        "tolerations": [],
        "enableServiceMutatorWebhook": False,
        "podDisruptionBudget": {"maxUnavailable": 1},
    },
    "cluster-autoscaler": {
        "cloudProvider": "aws",
        "autoDiscovery": {"clusterName": "demo"},
        "awsRegion": "eu-west-1",
        "image": {"tag": "v1.35.2"},
        "rbac": {"serviceAccount": {"name": "cluster-autoscaler", "annotations": {"a": "b"}}},
        "extraArgs": {
            "balance-similar-node-groups": True,
            "skip-nodes-with-system-pods": False,
            "expander": "least-waste",
        },
        "nodeSelector": {"role": "system"},
        "tolerations": [],
    },
    "karpenter": {
        "replicas": 2,
        "serviceAccount": {"create": True, "name": "karpenter"},
        "nodeSelector": {"role": "system"},
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "controller": {
            "env": [{"name": "AWS_REGION", "value": "eu-west-1"}],
            "resources": {"requests": {"cpu": "250m"}},
        },
        "settings": {
            "clusterName": "demo",
            "eksControlPlane": True,
            "interruptionQueue": "demo",
            "featureGates": {"spotToSpotConsolidation": False},
        },
    },
    "metrics-server": {
        "args": ["--kubelet-insecure-tls"],
        "replicas": 2,
        "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
        "nodeSelector": {"role": "system"},
        "tolerations": [],
    },
    "argo-cd": {
        "global": {"domain": "argocd.example.com", "nodeSelector": {}, "tolerations": []},
        "configs": {
            "params": {"server.insecure": True},
            "cm": {"url": "http://argocd.example.com"},
            "secret": {"argocdServerAdminPassword": "$2a$10$hash", "createSecret": False},
        },
        "server": {
            "httproute": {"enabled": True, "parentRefs": [{"name": "edge"}], "hostnames": ["a"]},
            "metrics": {"enabled": True, "serviceMonitor": {"enabled": True}},
        },
        "applicationSet": {"replicas": 1, "metrics": {"enabled": True}},
        "dex": {"enabled": False},
    },
    "kube-prometheus-stack": {
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "kubeProxy": {"enabled": False},
        "defaultRules": {"rules": {"etcd": False, "kubeSchedulerAlerting": False}},
        "alertmanager": {
            "enabled": True,
            "serviceAccount": {"name": "am", "annotations": {"eks.amazonaws.com/role-arn": "a"}},
            "alertmanagerSpec": {"secrets": ["receivers"], "nodeSelector": {}, "tolerations": []},
            "config": {"route": {"receiver": "null"}, "receivers": [{"name": "null"}]},
        },
        "prometheus": {
            "prometheusSpec": {
                "retention": "10d",
                "storageSpec": {"volumeClaimTemplate": {"spec": {"storageClassName": "gp3"}}},
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "serviceMonitorNamespaceSelector": {},
            }
        },
        "grafana": {
            "rbac": {"useExistingClusterRole": "grafana-configmaps"},
            "nodeSelector": {},
            "admin": {"existingSecret": "grafana-admin", "userKey": "u", "passwordKey": "p"},
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": "grafana_dashboard",
                    "labelValue": "1",
                    "searchNamespace": "ALL",
                    "folderAnnotation": "grafana_folder",
                    "provider": {"foldersFromFilesStructure": True},
                },
                "datasources": {"enabled": True},
            },
            "route": {"main": {"enabled": True, "hostnames": ["g"], "parentRefs": [{"name": "e"}]}},
        },
        "prometheusOperator": {"nodeSelector": {}, "tolerations": []},
        "kube-state-metrics": {"nodeSelector": {}},
        "prometheus-node-exporter": {"tolerations": []},
    },
    "gateway-helm": {
        "deployment": {
            "replicas": 2,
            "envoyGateway": {"resources": {"requests": {"cpu": "100m"}}},
            "pod": {"nodeSelector": {"role": "system"}, "tolerations": []},
        },
        "podDisruptionBudget": {"minAvailable": 1},
        "config": {"envoyGateway": {"envoyProxy": ENVOY_PROXY["spec"]}},
    },
}


@pytest.mark.parametrize("chart", sorted(PLATFORM_VALUES))
def test_the_values_paths_we_document_are_known(chart: str) -> None:
    assert checks.unknown_values_keys(chart, PLATFORM_VALUES[chart]) == []


# --------------------------------------------------------------------------------------------
# Default rules and the jobs they select
# --------------------------------------------------------------------------------------------

KPS = "kube-prometheus-stack"


def test_with_the_charts_defaults_every_enabled_rule_has_its_scrape_job() -> None:
    assert checks.rules_without_scrapes(KPS, {}) == []
    assert "kube-scheduler" in checks.scraped_jobs(KPS, {})


def test_a_rule_group_whose_job_is_not_scraped_is_reported() -> None:
    # node-exporter's rule files are not gated on nodeExporter.enabled: they would stay.
    problems = checks.rules_without_scrapes(KPS, {"nodeExporter": {"enabled": False}})
    assert problems and all("'node-exporter'" in problem for problem in problems)
    assert any("node-exporter.yaml (node-exporter)" in problem for problem in problems)
    unscraped = {"kubeScheduler": {"serviceMonitor": {"enabled": False}}}
    assert any(
        "kubernetes-system-scheduler" in p for p in checks.rules_without_scrapes(KPS, unscraped)
    )


def test_turning_a_component_off_drops_the_rule_files_it_gates() -> None:
    files = {
        f["file"].rsplit("/", 1)[-1]
        for f in checks.enabled_rule_files(KPS, {"kubeEtcd": {"enabled": False}})
    }
    assert "etcd.yaml" not in files and "general.rules.yaml" in files
    assert ".*etcd.*" not in checks.scraped_jobs(KPS, {"kubeEtcd": {"enabled": False}})


def test_rule_files_name_their_groups_and_jobs() -> None:
    fixture = checks.rules_fixture(KPS)
    by_file = {f["file"].rsplit("/", 1)[-1]: f for f in fixture["rule_files"]}
    assert by_file["kubernetes-system-kube-proxy.yaml"]["jobs"] == ["kube-proxy"]
    assert "KubeProxyDown" in by_file["kubernetes-system-kube-proxy.yaml"]["alerts"]
    assert by_file["etcd.yaml"]["when"] == [
        "defaultRules.create",
        "kubeEtcd.enabled",
        "defaultRules.rules.etcd",
    ]
    assert by_file["alertmanager.rules.yaml"]["jobs"] == ["{fullname}-alertmanager"]
    assert all(f["groups"] for f in fixture["rule_files"])


# --------------------------------------------------------------------------------------------
# Alertmanager configuration against the operator's own types
# --------------------------------------------------------------------------------------------

ALERTMANAGER_CONFIG: dict[str, Any] = {
    "global": {"resolve_timeout": "5m"},
    "route": {
        "receiver": "null",
        "group_by": ["namespace"],
        "routes": [{"receiver": "pager", "matchers": ['severity = "critical"']}],
    },
    "receivers": [
        {"name": "null"},
        {
            "name": "pager",
            "sns_configs": [
                {
                    "topic_arn": "arn:aws:sns:us-east-1:123456789012:t",
                    "sigv4": {"region": "us-east-1"},
                }
            ],
            "slack_configs": [{"api_url_file": "/etc/x", "send_resolved": True}],
            "email_configs": [
                {
                    "to": "a@b.c",
                    "from": "d@b.c",
                    "smarthost": "smtp:587",
                    "auth_password_file": "/p",
                }
            ],
            "webhook_configs": [
                {"url_file": "/etc/hb", "http_config": {"proxy_url": "http://p:3128"}}
            ],
        },
    ],
    "inhibit_rules": [{"source_matchers": ["a = b"], "target_matchers": ["c = d"], "equal": ["x"]}],
    "templates": ["/etc/alertmanager/config/*.tmpl"],
}


def test_a_valid_alertmanager_config_is_accepted() -> None:
    assert checks.alertmanager_config_errors(ALERTMANAGER_CONFIG) == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("route.recevier", "x", "config.route.recevier: unknown field"),
        (
            "receivers.1.sns_configs.0.sigv4.token",
            "x",
            "config.receivers[1].sns_configs[0].sigv4.token: unknown",
        ),
        ("receivers.1.slack_configs.0.send_resolved", "yes", "send_resolved: must be a bool"),
        ("route.group_by", "namespace", "config.route.group_by: must be a list"),
        ("receivers.1.email_configs.0.headers", {"X": 1}, "headers: must map strings to strings"),
    ],
)
def test_alertmanager_config_mistakes_are_reported(path: str, value: Any, expected: str) -> None:
    errors = checks.alertmanager_config_errors(modified(ALERTMANAGER_CONFIG, path, value))
    assert any(expected in error for error in errors), errors


def test_an_addon_configuration_is_checked_for_keys_and_types() -> None:
    good = {"controller": {"region": "eu-west-1", "extraCreateMetadata": True}}
    assert checks.addon_configuration_errors("aws-ebs-csi-driver", good) == []
    problems = checks.addon_configuration_errors(
        "aws-ebs-csi-driver",
        {"controller": {"regoin": "eu-west-1", "extraCreateMetadata": "yes"}},
    )
    assert "controller.regoin" in problems
    assert any("extraCreateMetadata" in p and "boolean" in p for p in problems), problems
