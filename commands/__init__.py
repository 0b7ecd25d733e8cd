"""The command layer, above the services: one module per command group, each registering its
commands on the app (`register(app)`). A command parses options and calls one function of a
service, a tool or the library; imports of heavy modules stay inside the commands."""
