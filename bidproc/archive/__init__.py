"""Archive: object storage, evidence packages, retention."""
