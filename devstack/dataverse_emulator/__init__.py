"""A Dataverse Web API emulator: the OData subset Tillbridge uses, with Dataverse's errors and limits."""
