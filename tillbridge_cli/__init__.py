"""The `tillbridge` command: operations tooling (schema, webhook registration, Dataverse access)."""
