"""One module per architecture: its spec and where its checks live (discovered automatically)."""
