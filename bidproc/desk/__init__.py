"""The receiving side (the "front desk"): what happens before a bid reaches the queue, and its opening.

`deposit` creates tenders and bids, takes uploads and submissions; `receipt` issues the deposit receipt
(exact time, SHA-256, file list, RFC 3161 timestamp); `tenants` authenticates API keys and roles;
`opening` runs the opening ceremony. Flow: api -> [desk] -> pipeline -> intake -> signature -> encryption -> archive.
"""
