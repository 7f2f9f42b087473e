"""What the vendor's legacy REST API is made of, shared by the gateway that serves it and the
client that calls it: its paths (`paths`), the names on the wire (`wire`) and the auth-v2
signature (`auth_v2`). The legacy JSON mapping is the gateway's (`gateway.legacy_json`)."""
