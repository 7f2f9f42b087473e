"""What the vendor's legacy REST API is made of, shared by the gateway that serves it and the
client that calls it: its paths, the auth-v2 signature and the legacy JSON mapping."""
