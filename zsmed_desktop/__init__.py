"""The zsmed desktop app (PySide6): thin views over zsmed, long work in worker threads."""
