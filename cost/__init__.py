"""Cost: what an adpulse stack costs, priced offline from the Pulumi program."""
