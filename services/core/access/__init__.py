"""Access control in Core: the bindings Core keeps, and the rule of every RPC."""
