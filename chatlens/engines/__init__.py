"""Where stage functions run: in this process or a pool of processes (:mod:`.local`), or on
Apache Spark (:mod:`.spark`, the ``spark`` extra)."""
