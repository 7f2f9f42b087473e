"""The gRPC service: domain rules, persistence, servicers and the server."""
