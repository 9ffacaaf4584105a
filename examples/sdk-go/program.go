package main

import (
	"github.com/microseg/microseg/sdk/go/microseg"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// program is a microseg program on the generated Go SDK: a VM, a security group selecting it by label,
// and a firewall policy with one inline rule letting the app network reach its database.
func program(ctx *pulumi.Context) error {
	db, err := microseg.NewVirtualMachine(ctx, "db", &microseg.VirtualMachineArgs{
		Name:       pulumi.String("go-db"),
		Interfaces: microseg.VmInterfaceArray{microseg.VmInterfaceArgs{Ip: pulumi.String("192.168.60.10")}},
		Labels:     pulumi.StringMap{"app": pulumi.String("go-db"), "tier": pulumi.String("data")},
	})
	if err != nil {
		return err
	}
	sgDb, err := microseg.NewSecurityGroup(ctx, "sg-db", &microseg.SecurityGroupArgs{
		Name:        pulumi.String("go-sg-db"),
		Description: pulumi.String("databases of the Go example"),
		VmSelectors: microseg.LabelSelectorArray{microseg.LabelSelectorArgs{
			MatchLabels: pulumi.StringMap{"app": pulumi.String("go-db")},
		}},
	}, pulumi.DependsOn([]pulumi.Resource{db}))
	if err != nil {
		return err
	}
	policy, err := microseg.NewFirewallPolicy(ctx, "db-access", &microseg.FirewallPolicyArgs{
		Name:      pulumi.String("go-db-access"),
		Category:  pulumi.String("application"),
		Priority:  pulumi.Int(100),
		AppliedTo: pulumi.StringArray{sgDb.ID().ToStringOutput()},
		Rules: microseg.RuleArray{microseg.RuleArgs{
			Name:         pulumi.String("app-to-db"),
			Action:       pulumi.String("allow"),
			Sources:      microseg.PeerArray{microseg.PeerArgs{Cidr: pulumi.String("10.30.0.0/16")}},
			Destinations: microseg.PeerArray{microseg.PeerArgs{Group: sgDb.ID().ToStringOutput()}},
			Services: microseg.ServiceArray{microseg.ServiceArgs{
				Protocol: pulumi.String("tcp"),
				Ports:    pulumi.Array{pulumi.Int(5432)},
			}},
		}},
	})
	if err != nil {
		return err
	}
	ctx.Export("vm", db.ID())
	ctx.Export("group", sgDb.ID())
	ctx.Export("policy", policy.ID())
	ctx.Export("rules", policy.Rules.ApplyT(func(rules []microseg.Rule) []string {
		names := make([]string, 0, len(rules))
		for _, r := range rules {
			names = append(names, r.Name)
		}
		return names
	}).(pulumi.StringArrayOutput))
	return nil
}
