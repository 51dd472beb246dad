"""A Square API emulator: customer endpoints with Square's shapes and errors, a control API that acts
like the Dashboard/POS, and signed, at-least-once webhook delivery that can duplicate, delay and reorder."""
