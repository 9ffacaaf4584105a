"""A microseg program on the generated Python SDK (pulumi_microseg): a VM, a security group selecting
it by label, and a firewall policy with one inline rule letting the app network reach its database."""
import pulumi
import pulumi_microseg as microseg


def program() -> None:
    db = microseg.VirtualMachine(
        "db",
        name="py-db",
        interfaces=[microseg.VmInterfaceArgs(ip="192.168.50.10")],
        labels={"app": "py-db", "tier": "data"},
    )
    sg_db = microseg.SecurityGroup(
        "sg-db",
        name="py-sg-db",
        description="databases of the Python example",
        vm_selectors=[{"match_labels": {"app": "py-db"}}],
        opts=pulumi.ResourceOptions(depends_on=[db]),
    )
    policy = microseg.FirewallPolicy(
        "db-access",
        name="py-db-access",
        category="application",
        priority=100,
        applied_to=[sg_db.id],
        rules=[
            microseg.RuleArgs(
                name="app-to-db",
                action="allow",
                sources=[microseg.PeerArgs(cidr="10.20.0.0/16")],
                destinations=[microseg.PeerArgs(group=sg_db.id)],
                services=[microseg.ServiceArgs(protocol="tcp", ports=[5432])],
            ),
        ],
    )
    pulumi.export("vm", db.id)
    pulumi.export("group", sg_db.id)
    pulumi.export("policy", policy.id)
    pulumi.export("rules", policy.rules.apply(lambda rules: [r.name for r in rules or []]))
