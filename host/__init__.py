"""Host side: wire protocol, transports, backends, training loops and the command line."""
