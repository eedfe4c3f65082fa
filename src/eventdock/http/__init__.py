"""HTTP plumbing shared by the dialects: body reading, services, metrics, ops routes."""
