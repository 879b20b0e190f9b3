"""RFC 3161 timestamps: a client for a configured TSA, and the embedded local TSA."""
