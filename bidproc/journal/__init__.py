"""The audit journal: every access, attempt, deadline change and opening, hash-chained."""
