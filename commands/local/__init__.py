"""The local launcher of `adpulse up`: the stack as processes and threads on this machine."""
