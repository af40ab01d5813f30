"""Where stage functions run: in this process or a pool of processes (Spark comes later)."""
