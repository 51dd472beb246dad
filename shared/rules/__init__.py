"""Follow-up rules and segment conditions: pure evaluation over a sale, a refund or a contact's purchase
aggregates, returning outcomes (with the reason) and the Dataverse operations to send."""
