"""The local stack: Azurite, the Square and Dataverse emulators, and the local function host."""
