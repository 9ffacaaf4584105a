"""The flagship example in Python: the VCCI scenario (shared/seeds 000 and 002) segmented with microseg.

A line-by-line port of examples/vcci-app/index.ts: the same resources, backend names, policies,
assertions and outputs, so the two programs are interchangeable on one microseg data directory.

- East-west Pod/VM -> Pod: backend accepts only apigateway and the rating VM.
- East-west Pod/VM -> VM: rating accepts only apigateway (which leaves the overlay cluster through
  its own egress IP, so the VM can tell it apart from other pods SNATed to the node IP).
- North-south: frontend may reach only apigateway and CoreDNS (53/udp, 53/tcp).
- Infrastructure: everything may reach CoreDNS; monitoring may scrape every workload.
- Quarantine: `quarantine=true` on any VM or pod isolates it except for the forensic jump host.
- Egress: backend leaves the cluster with a stable egress IP; the database VM accepts only that IP.
- A load balancer fronts the backend replicas.
- ConnectivityAssertions encode the intent; preview and up fail when a change breaks one.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import pulumi
import pulumi_microseg as microseg


def program() -> Dict[str, Any]:
    """Declares the stack and returns its outputs (also exported, so the program runs standalone)."""
    config = pulumi.Config()
    replicas_config = config.get_int("backendReplicas")
    backend_replicas = 3 if replicas_config is None else replicas_config

    def deps(*resources: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(depends_on=list(resources))

    # ---- Inventory -------------------------------------------------------------------------------
    cluster = microseg.KubernetesCluster(
        "vcci",
        name="vcci",
        pod_cidr="10.244.0.0/16",
        service_cidr="10.96.0.0/12",
        network_mode="overlay",
        nodes=[
            {"name": "node-1", "ip": "192.168.28.11"},
            {"name": "node-2", "ip": "192.168.28.12"},
        ],
    )

    def ns(name: str, labels: Dict[str, str]) -> microseg.Namespace:
        return microseg.Namespace(name, name=name, cluster=cluster.name, labels=labels)

    shop = ns("shop", {"env": "prod"})
    kube_system = ns("kube-system", {})
    monitoring_ns = ns("monitoring", {})

    def workload(name: str, namespace: microseg.Namespace, labels: Dict[str, str], ports: List[Dict[str, Any]], replicas: pulumi.Input[int] = 1) -> microseg.Workload:
        return microseg.Workload(name, name=name, cluster=cluster.name, namespace=namespace.name, labels=labels, ports=ports, replicas=replicas)

    frontend = workload("frontend", shop, {"app": "frontend"}, [{"name": "http", "port": 8080}], 2)
    apigateway = workload("apigateway", shop, {"app": "apigateway"}, [{"name": "http", "port": 8080}], 2)
    nacos = workload("nacos", shop, {"app": "nacos"}, [{"name": "registry", "port": 8848}])
    backend = workload("backend", shop, {"app": "backend"}, [{"name": "http", "port": 8080}], backend_replicas)
    coredns = workload("coredns", kube_system, {"k8s-app": "kube-dns"}, [{"name": "dns", "port": 53, "protocol": "udp"}, {"name": "dns-tcp", "port": 53}], 2)
    prometheus = workload("prometheus", monitoring_ns, {"app": "prometheus"}, [{"name": "web", "port": 9090}])

    def vm(name: str, ip: str, labels: Dict[str, str]) -> microseg.VirtualMachine:
        return microseg.VirtualMachine(name, name=name, interfaces=[{"ip": ip}], labels=labels)

    rating = vm("rating", "192.168.28.213", {"app": "rating"})
    database = vm("database", "192.168.28.50", {"app": "database"})
    jumphost = vm("jumphost", "192.168.28.99", {"role": "forensics"})

    # ---- Egress IPs: stable SNAT addresses that VMs and external firewalls can tell apart ----------
    backend_egress = microseg.EgressIp(
        "backend-egress", name="backend-egress", cluster=cluster.name, ip="192.168.28.200",
        pod_selector={"pod_selector": {"match_labels": {"app": "backend"}}}, opts=deps(backend),
    )
    gateway_egress = microseg.EgressIp(
        "gateway-egress", name="gateway-egress", cluster=cluster.name, ip="192.168.28.201",
        pod_selector={"pod_selector": {"match_labels": {"app": "apigateway"}}}, opts=deps(apigateway),
    )

    # ---- Groups ------------------------------------------------------------------------------------
    def pods(name: str, match_labels: Dict[str, str], *depends_on: pulumi.Resource) -> microseg.SecurityGroup:
        return microseg.SecurityGroup(
            name, name=name, pod_selectors=[{"cluster": cluster.name, "pod_selector": {"match_labels": match_labels}}], opts=deps(*depends_on),
        )

    g_frontend = pods("frontend", {"app": "frontend"}, frontend)
    g_gateway = pods("apigateway", {"app": "apigateway"}, apigateway)
    g_nacos = pods("nacos", {"app": "nacos"}, nacos)
    g_backend = pods("backend", {"app": "backend"}, backend)
    g_dns = pods("coredns", {"k8s-app": "kube-dns"}, coredns)
    g_monitoring = pods("monitoring", {"app": "prometheus"}, prometheus)
    g_rating = microseg.SecurityGroup("rating", name="rating", vms=[rating.name])
    g_database = microseg.SecurityGroup("database", name="database", vms=[database.name])
    g_forensics = microseg.SecurityGroup("forensics", name="forensics", vm_selectors=[{"match_labels": {"role": "forensics"}}], opts=deps(jumphost))
    g_backend_egress = microseg.SecurityGroup("backend-egress-ip", name="backend-egress-ip", egress_ips=[backend_egress.name])
    g_gateway_egress = microseg.SecurityGroup("gateway-egress-ip", name="gateway-egress-ip", egress_ips=[gateway_egress.name])
    g_payments = microseg.SecurityGroup("payments-api", name="payments-api", ip_blocks=[{"cidr": "203.0.113.10/32"}])

    # ---- Load balancer in front of the backend replicas ---------------------------------------------
    backend_lb = microseg.LoadBalancer(
        "backend-lb",
        name="backend-lb",
        vip="192.168.28.100",
        listeners=[{"port": 80, "protocol": "tcp", "target_port": "http"}],
        pool={"group": g_backend.name},
        algorithm="round-robin",
        health_check={"protocol": "http", "path": "/healthz"},
    )

    def tcp(*ports: Any) -> Dict[str, Any]:
        return {"protocol": "tcp", "ports": list(ports)}

    def udp(*ports: Any) -> Dict[str, Any]:
        return {"protocol": "udp", "ports": list(ports)}

    def group(g: microseg.SecurityGroup) -> Dict[str, Any]:
        return {"group": g.name}

    # ---- Emergency: quarantine by label, with a forensic exception -----------------------------------
    quarantine = microseg.QuarantinePolicy(
        "quarantine",
        name="quarantine",
        selector={"match_labels": {"quarantine": "true"}},
        forensic_group=g_forensics.name,
        forensic_services=[tcp(22)],
    )

    # ---- Infrastructure (security admins): DNS for everyone, monitoring may scrape everything ------
    infra = microseg.FirewallPolicy(
        "infrastructure",
        name="infrastructure",
        category="infrastructure",
        priority=100,
        rules=[
            {"name": "dns", "action": "allow", "destinations": [group(g_dns)], "services": [udp(53), tcp(53)]},
            {"name": "monitoring-scrape", "action": "allow", "sources": [group(g_monitoring)], "services": [tcp(8080, 9100)]},
        ],
    )

    # ---- Environment: the database VM accepts only the backend's egress IP ---------------------------
    environment = microseg.FirewallPolicy(
        "prod-boundaries",
        name="prod-boundaries",
        category="environment",
        priority=100,
        applied_to=[g_database.name],
        rules=[
            {"name": "db-from-backend-egress", "action": "allow", "direction": "in", "sources": [group(g_backend_egress)], "services": [tcp(5432)]},
            {"name": "db-deny-rest", "action": "drop", "direction": "in"},
        ],
    )

    # ---- Application (app owners) -------------------------------------------------------------------
    app = microseg.FirewallPolicy(
        "shop",
        name="shop",
        category="application",
        priority=100,
        rules=[
            {"name": "frontend-to-gateway", "action": "allow", "sources": [group(g_frontend)], "destinations": [group(g_gateway)], "services": [tcp(8080)]},
            {"name": "frontend-deny-rest", "action": "drop", "direction": "out", "applied_to": [g_frontend.name], "sources": [group(g_frontend)]},
            {"name": "gateway-to-backend", "action": "allow", "sources": [group(g_gateway)], "destinations": [group(g_backend)], "services": [tcp("http")]},
            {"name": "gateway-to-backend-vip", "action": "allow", "direction": "out", "sources": [group(g_gateway)], "destinations": [{"cidr": backend_lb.vip.apply(lambda v: f"{v}/32")}], "services": [tcp(80)]},
            {"name": "rating-to-backend", "action": "allow", "sources": [group(g_rating)], "destinations": [group(g_backend)], "services": [tcp(8080)]},
            {"name": "backend-deny-rest-in", "action": "drop", "direction": "in", "applied_to": [g_backend.name], "destinations": [group(g_backend)]},
            {"name": "gateway-to-rating", "action": "allow", "sources": [group(g_gateway), group(g_gateway_egress)], "destinations": [group(g_rating)], "services": [tcp(8080)]},
            {"name": "rating-deny-rest-in", "action": "drop", "direction": "in", "applied_to": [g_rating.name], "destinations": [group(g_rating)]},
            {"name": "registry", "action": "allow", "sources": [group(g_gateway), group(g_backend)], "destinations": [group(g_nacos)], "services": [tcp(8848)]},
            {"name": "backend-to-database", "action": "allow", "direction": "out", "sources": [group(g_backend)], "destinations": [group(g_database)], "services": [tcp(5432)]},
            {"name": "backend-to-payments", "action": "allow", "direction": "out", "sources": [group(g_backend)], "destinations": [group(g_payments)], "services": [tcp(443)]},
        ],
    )

    # ---- Intent, checked in preview and up ----------------------------------------------------------
    policies: List[pulumi.Resource] = [quarantine, infra, environment, app, backend_lb]

    def id_(w: microseg.Workload) -> pulumi.Output[str]:
        return pulumi.Output.concat(w.cluster, "/", w.namespace, "/", w.name)

    def assert_(name: str, from_: pulumi.Input[str], to: pulumi.Input[str], protocol: str, port: int, expect: str) -> microseg.ConnectivityAssertion:
        return microseg.ConnectivityAssertion(
            name, name=name, from_=from_, to=to, protocol=protocol, port=port, expect=expect, opts=pulumi.ResourceOptions(depends_on=policies),
        )

    lb_target = pulumi.Output.concat("lb:", backend_lb.name)
    assertions: List[pulumi.Resource] = [
        assert_("frontend-cannot-reach-database", id_(frontend), database.name, "tcp", 5432, "deny"),
        assert_("frontend-reaches-gateway", id_(frontend), id_(apigateway), "tcp", 8080, "allow"),
        assert_("frontend-resolves-dns", id_(frontend), id_(coredns), "udp", 53, "allow"),
        assert_("frontend-cannot-reach-rating", id_(frontend), rating.name, "tcp", 8080, "deny"),
        assert_("gateway-reaches-backend", id_(apigateway), id_(backend), "tcp", 8080, "allow"),
        assert_("gateway-reaches-backend-via-lb", id_(apigateway), lb_target, "tcp", 80, "allow"),
        assert_("gateway-reaches-rating", id_(apigateway), rating.name, "tcp", 8080, "allow"),
        assert_("rating-reaches-backend", rating.name, id_(backend), "tcp", 8080, "allow"),
        assert_("backend-reaches-database", id_(backend), database.name, "tcp", 5432, "allow"),
        assert_("nacos-cannot-reach-database", id_(nacos), database.name, "tcp", 5432, "deny"),
    ]
    after_assertions = pulumi.InvokeOutputOptions(depends_on=assertions)

    # ---- Outputs: traceflow for a handful of flows and the connectivity matrix ---------------------------
    def step(o: Any) -> str:
        text = f"{o.component}:{o.action}"
        if o.translated_source_ip:
            text += f" snat→{o.translated_source_ip}"
        if o.translated_destination_ip:
            text += f" dnat→{o.translated_destination_ip}"
        return text

    def trace(from_: pulumi.Input[str], to: pulumi.Input[str], protocol: str, port: int) -> pulumi.Output[Dict[str, Any]]:
        return microseg.traceflow_output(source=from_, destination=to, protocol=protocol, port=port, opts=after_assertions).apply(
            lambda t: {
                "verdict": t.verdict,
                "decidedBy": "default rule" if t.deciding_policy == "default" else f"{t.deciding_policy}/{t.deciding_rule}",
                "path": [step(o) for o in t.observations],
            }
        )

    matrix = microseg.get_connectivity_matrix_output(
        groups=[g_frontend.name, g_gateway.name, g_backend.name, g_rating.name, g_database.name], protocol="tcp", port=8080, opts=after_assertions,
    ).apply(lambda m: [f"{c.from_} -> {c.to}: {c.verdict}" for c in m.cells if c.verdict != "empty" and c.from_ != c.to])

    # Invokes see the world as it is now (members follow pod churn); `memberCount` outputs are as last applied.
    def live(group_name: pulumi.Input[Optional[str]]) -> pulumi.Output[int]:
        return microseg.get_group_members_output(group=group_name, opts=after_assertions).count

    outputs: Dict[str, Any] = {
        "backendReplicas": backend_replicas,
        "backendMembers": live(g_backend.name),
        "loadBalancerMembers": backend_lb.pool.apply(lambda p: live(p.group or "")),
        "traceflows": {
            "frontend -> database tcp/5432": trace(id_(frontend), database.name, "tcp", 5432),
            "frontend -> apigateway tcp/8080": trace(id_(frontend), id_(apigateway), "tcp", 8080),
            "apigateway -> backend-lb tcp/80": trace(id_(apigateway), lb_target, "tcp", 80),
            "backend -> database tcp/5432": trace(id_(backend), database.name, "tcp", 5432),
            "apigateway -> rating tcp/8080": trace(id_(apigateway), rating.name, "tcp", 8080),
        },
        "connectivityMatrixTcp8080": matrix,
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs
